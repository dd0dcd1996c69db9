// oneDNN's float32 matrix product, written into a given output: out = a b + beta out.
//
// Why: on some CPUs (AMD EPYC with AVX-512) torch.mm / torch.addmm on float32 run MKL on a slower
// code path than oneDNN's on the InfoMax bank's shapes (benchmarks/ measures both); oneDNN is also
// inside PyTorch, used by it for bfloat16 products.  PyTorch sends float32 products to
// oneDNN only when it may lower their precision, so this calls its wrapper directly.  The wrapper,
// at::native::mkldnn_matmul, is exported by libtorch_cpu but has no public header: it is declared
// here with the signature of PyTorch 2.x (ATen/native/mkldnn/Matmul.h).  If a PyTorch build lacks it,
// this file does not load and actfn.kernels.onednn_matmul() says so and returns None (torch.mm is used).
#include <torch/extension.h>

namespace at {
namespace native {
TORCH_API void mkldnn_matmul(const Tensor& mat1, const Tensor& mat2, const Tensor& result, float beta,
                             float alpha);
}  // namespace native
}  // namespace at

void matmul_into(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, double beta) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && out.dim() == 2, "matmul_into: 2-D tensors");
  TORCH_CHECK(a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && out.scalar_type() == at::kFloat,
              "matmul_into: float32 tensors");
  TORCH_CHECK(a.size(1) == b.size(0) && out.size(0) == a.size(0) && out.size(1) == b.size(1),
              "matmul_into: shapes do not match");
  at::native::mkldnn_matmul(a, b, out, float(beta), 1.0f);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("matmul_into", &matmul_into, "out = a b + beta out, float32, by oneDNN (CPU)");
}
