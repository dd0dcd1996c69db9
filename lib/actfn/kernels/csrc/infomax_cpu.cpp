// The InfoMax bank's per-model work between its two matrix products, fused: one pass per model.
//
// Input: the pre-activations z^T of M models per seed, zt (S, M K, B), model m's K x B block at rows
// m K .. (m + 1) K -- unit-major, one unit's batch contiguous.  For each (seed, model) block, with the
// block in cache: a = f(z) (the model's activation), the centred c, C = c c^T / (B - 1), the loss
//
//     L = - sum_j log(C_jj + eps) + lam ||R - I||_F^2,   R_ij = C_ij / (s_i s_j),  s_i = sqrt(C_ii),
//
// and, if asked, dL/dz (through f) and, for the piecewise-linear activation, dL/dknots.  The gradient is
// the closed form of actfn.infomax.InfoMaxLoss (dL/da = 2 G c / (B - 1)); the activations and their
// derivatives are those of actfn.activations (softplus with torch's threshold 20, leaky ReLU 0.01,
// the piecewise-linear activation of csrc/pwl_cpu.cpp).  In PyTorch the same work is about ten passes
// over all the models' activations in memory; here each model's block is read once and stays in
// cache.  Models are independent and each is done by one thread, so the results do not depend on the
// number of threads.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#if defined(__AVX512F__) || defined(__SSE2__)
#include <immintrin.h>
#endif
#include <string>
#include <vector>

#include "infomax_blocks.h"

namespace {

inline float to_float(float v) { return v; }
inline float to_float(at::BFloat16 v) { return static_cast<float>(v); }

#if defined(__AVX512F__)
inline __m512 load16(const float* g) { return _mm512_loadu_ps(g); }
inline __m512 load16(const at::BFloat16* g) {   // bfloat16 -> float32: the 16 bits on top
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// float32 -> bfloat16, rounding to nearest even like torch's cast; NaN stays NaN (the rounding add
// could carry a NaN's payload into infinity or the sign bit)
inline void store16_bf16(at::BFloat16* out, __m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
  rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q),
                                  _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(rounded));
}
#endif

// n values from bfloat16 to float32 and back (the back with torch's rounding): a model's block of the
// bfloat16 products, converted in cache (a cast of the whole product was a pass through memory)
void widen(const at::BFloat16* in, float* out, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load16(in + i));
#endif
  for (; i < n; ++i) out[i] = static_cast<float>(in[i]);
}

void narrow(const float* in, at::BFloat16* out, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) store16_bf16(out + i, _mm512_loadu_ps(in + i));
#endif
  for (; i < n; ++i) out[i] = at::BFloat16(in[i]);
}

// A (S, rows, B) float32 or bfloat16 tensor whose seeds may lie apart (a view of a larger product's output):
// each seed's rows contiguous, seed s at data + s * seed_stride.  Anything else is made contiguous.
struct SeedBlocks {
  torch::Tensor t;
  int64_t seed_stride;

  bool bf16() const { return t.defined() && t.scalar_type() == torch::kBFloat16; }   // (undefined: no output)
  int64_t at(int64_t s, int64_t offset) const { return s * seed_stride + offset; }

  // n values of seed s from `offset` as float32: the tensor's own memory, or widened into scratch
  const float* read(int64_t s, int64_t offset, int64_t n, float* scratch) const {
    if (!bf16()) return t.data_ptr<float>() + at(s, offset);
    widen(t.data_ptr<at::BFloat16>() + at(s, offset), scratch, n);
    return scratch;
  }
  // where n float32 results for seed s from `offset` are computed: the output itself, or scratch that
  // store() then narrows into it
  float* target(int64_t s, int64_t offset, float* scratch) const {
    return bf16() ? scratch : t.data_ptr<float>() + at(s, offset);
  }
  void store(int64_t s, int64_t offset, int64_t n, const float* from) const {
    if (bf16()) narrow(from, t.data_ptr<at::BFloat16>() + at(s, offset), n);
  }
};

SeedBlocks seed_blocks(const torch::Tensor& t) {
  if (t.stride(2) == 1 && t.stride(1) == t.size(2)) return {t, t.size(0) > 1 ? t.stride(0) : t.size(1) * t.size(2)};
  auto c = t.contiguous();
  return {c, c.size(1) * c.size(2)};
}

// An output of `like`'s shape and dtype: `out` if given (checked: that dtype and shape, seeds' rows
// contiguous), else new.
SeedBlocks output_like(const torch::Tensor& like, const std::optional<torch::Tensor>& out, const char* name) {
  if (!out.has_value()) return {torch::empty_like(like, at::MemoryFormat::Contiguous), like.size(1) * like.size(2)};
  const torch::Tensor& o = *out;
  TORCH_CHECK(o.scalar_type() == like.scalar_type() && o.sizes() == like.sizes() && o.stride(2) == 1 &&
              o.stride(1) == o.size(2), name, ": the output must be ", like.scalar_type(), " of shape ",
              like.sizes(), " with each seed's rows contiguous");
  return seed_blocks(o);  // (as checked: o itself, never a copy)
}

bool float32_or_bfloat16(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16;
}

// The sums over the batch of dL/dz's rows (the biases' gradient), into row_sums (S, rows), if given:
// each seed's rows contiguous.
struct RowSums {
  float* data = nullptr;
  int64_t seed_stride = 0;

  RowSums(const std::optional<torch::Tensor>& out, const torch::Tensor& like, const char* name) {
    if (!out.has_value()) return;
    const torch::Tensor& o = *out;
    TORCH_CHECK(o.scalar_type() == torch::kFloat32 && o.dim() == 2 && o.size(0) == like.size(0) &&
                o.size(1) == like.size(1) && o.stride(1) == 1, name, ": row_sums must be float32 (",
                like.size(0), ", ", like.size(1), ") with each seed's rows contiguous");
    data = o.data_ptr<float>();
    seed_stride = o.stride(0);
  }
  void write(int64_t s, int64_t row0, const float* g, int64_t rows, int64_t B) const {
    if (!data) return;
    for (int64_t r = 0; r < rows; ++r) {
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t b = 0; b < B; ++b) sum += g[r * B + b];
      data[s * seed_stride + row0 + r] = sum;
    }
  }
};

}  // namespace

// zt (S, M K, B) float32 or bfloat16 (each seed's rows contiguous; the seeds may lie apart); kinds (M,)
// int64; lam (M,) float32; knots (S, M, P) float32.  grad_out: where dL/dzt goes (zt's dtype; else a new
// tensor); row_sums: where the sums of dL/dzt over the batch go (S, M K), if given.  A bfloat16 zt is
// widened, and dL/dzt narrowed, model by model in cache.
// Returns loss (S, M) and, if need_grad, dL/dzt (S, M K, B) and dL/dknots (S, M, P) for grad_loss = 1.
std::vector<torch::Tensor> infomax_blocks(torch::Tensor zt, torch::Tensor kinds, torch::Tensor lam,
                                          torch::Tensor knots, double eps, double lo, double hi, bool need_grad,
                                          std::optional<torch::Tensor> grad_out,
                                          std::optional<torch::Tensor> row_sums) {
  TORCH_CHECK(zt.device().is_cpu() && float32_or_bfloat16(zt) && zt.dim() == 3,
              "infomax_blocks: zt must be a float32 or bfloat16 CPU tensor (S, M K, B)");
  const int64_t S = zt.size(0), M = kinds.size(0), B = zt.size(2);
  TORCH_CHECK(M > 0 && zt.size(1) % M == 0, "infomax_blocks: zt rows are not a multiple of the models");
  TORCH_CHECK(B >= 2, "infomax_blocks: the batch needs at least two samples");
  const int64_t K = zt.size(1) / M;
  TORCH_CHECK(knots.dim() == 3 && knots.size(0) == S && knots.size(1) == M && knots.size(2) >= 2,
              "infomax_blocks: knots must be (S, M, P)");
  const SeedBlocks zb = seed_blocks(zt);
  auto kind = kinds.to(torch::kInt64).contiguous();
  auto lamf = lam.to(torch::kFloat32).contiguous();
  auto y = knots.to(torch::kFloat32).contiguous();
  const int64_t P = y.size(2);
  TORCH_CHECK(kind.numel() == 0 || (kind.min().item<int64_t>() >= 0 && kind.max().item<int64_t>() < KINDS),
              "infomax_blocks: unknown activation kind");
  auto loss = torch::empty({S, M}, zt.options().dtype(torch::kFloat32));
  SeedBlocks gb{torch::Tensor(), 0};
  torch::Tensor gy;
  if (need_grad) {
    gb = output_like(zt, grad_out, "infomax_blocks");
    gy = torch::zeros({S, M, P}, loss.options());
  }
  const RowSums sums(need_grad ? row_sums : std::nullopt, zt, "infomax_blocks");
  const float h = float((hi - lo) / double(P - 1));
  const float pa = float(1.0 / ((hi - lo) / double(P - 1))), pb = float(-lo / ((hi - lo) / double(P - 1)));
  const int64_t* kd = kind.data_ptr<int64_t>();
  const float* lm = lamf.data_ptr<float>();
  const float* yk = y.data_ptr<float>();
  float* out = loss.data_ptr<float>();
  float* gyp = need_grad ? gy.data_ptr<float>() : nullptr;
  at::parallel_for(0, S * M, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(4 * K * B + 3 * K * K + B), zf(zb.bf16() ? K * B : 0), gzf(gb.bf16() ? K * B : 0);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t s = t / M, m = t % M, block = m * K * B;
      const Pwl p{yk + t * P, P - 2, pa, pb, h};
      float* gz = need_grad ? gb.target(s, block, gzf.data()) : nullptr;
      out[t] = model_block(kd[m], lm[m], float(eps), zb.read(s, block, K * B, zf.data()), K, B, p, gz,
                           gyp ? gyp + t * P : nullptr, scratch.data());
      if (!gz) continue;
      sums.write(s, m * K, gz, K, B);
      gb.store(s, block, K * B, gz);
    }
  });
  return {loss, gb.t, gy};
}

// The reconstruction models of a bank: zt (S, R K, B) their pre-activations, proj (S, R K, B) = W'^T x^T,
// gram (S, R, K, K) = W'^T W', xx (S,) = mean_n ||x_n||^2 of each seed's batch, kinds (R,), knots (S, R, P).
// Returns loss (S, R) and, if need_grad, dL/dzt (S, R K, B), dL/dknots (S, R, P), na = -(2/B) a
// (S, R K, B) and aat = (2/B) a a^T (S, R, K, K) (the factors of dL/dW'^T), for grad_loss = 1.
// (zt and proj: float32 or bfloat16 (the same), each seed's rows contiguous, the seeds may lie apart;
// grad_out, na_out: where dL/dzt and na go, in zt's dtype, else new tensors; row_sums: as infomax_blocks.)
std::vector<torch::Tensor> reconstruction_blocks(torch::Tensor zt, torch::Tensor proj, torch::Tensor gram,
                                                 torch::Tensor xx, torch::Tensor kinds, torch::Tensor knots,
                                                 double lo, double hi, bool need_grad,
                                                 std::optional<torch::Tensor> grad_out,
                                                 std::optional<torch::Tensor> na_out,
                                                 std::optional<torch::Tensor> row_sums) {
  TORCH_CHECK(zt.device().is_cpu() && float32_or_bfloat16(zt) && zt.dim() == 3,
              "reconstruction_blocks: zt must be a float32 or bfloat16 CPU tensor (S, R K, B)");
  const int64_t S = zt.size(0), R = kinds.size(0), B = zt.size(2);
  TORCH_CHECK(R > 0 && zt.size(1) % R == 0, "reconstruction_blocks: zt rows are not a multiple of the models");
  const int64_t K = zt.size(1) / R;
  TORCH_CHECK(proj.sizes() == zt.sizes() && proj.scalar_type() == zt.scalar_type(),
              "reconstruction_blocks: proj must have zt's shape and dtype");
  TORCH_CHECK(gram.dim() == 4 && gram.size(0) == S && gram.size(1) == R && gram.size(2) == K && gram.size(3) == K &&
              gram.scalar_type() == torch::kFloat32, "reconstruction_blocks: gram must be float32 (S, R, K, K)");
  TORCH_CHECK(xx.numel() == S, "reconstruction_blocks: xx must hold one value per seed");
  TORCH_CHECK(knots.dim() == 3 && knots.size(0) == S && knots.size(1) == R && knots.size(2) >= 2,
              "reconstruction_blocks: knots must be (S, R, P)");
  const SeedBlocks zb = seed_blocks(zt), pb_ = seed_blocks(proj);
  gram = gram.contiguous();
  auto xxf = xx.to(torch::kFloat32).contiguous();
  auto kind = kinds.to(torch::kInt64).contiguous();
  auto y = knots.to(torch::kFloat32).contiguous();
  const int64_t P = y.size(2);
  TORCH_CHECK(kind.min().item<int64_t>() >= 0 && kind.max().item<int64_t>() < KINDS,
              "reconstruction_blocks: unknown activation kind");
  auto loss = torch::empty({S, R}, zt.options().dtype(torch::kFloat32));
  SeedBlocks gb{torch::Tensor(), 0}, nb{torch::Tensor(), 0};
  torch::Tensor gy, aat;
  if (need_grad) {
    gb = output_like(zt, grad_out, "reconstruction_blocks");
    nb = output_like(zt, na_out, "reconstruction_blocks");
    gy = torch::zeros({S, R, P}, loss.options());
    aat = torch::empty_like(gram);
  }
  const RowSums sums(need_grad ? row_sums : std::nullopt, zt, "reconstruction_blocks");
  const float h = float((hi - lo) / double(P - 1));
  const float pa = float(1.0 / ((hi - lo) / double(P - 1))), pb = float(-lo / ((hi - lo) / double(P - 1)));
  const float *gm = gram.data_ptr<float>(), *xs = xxf.data_ptr<float>(), *yk = y.data_ptr<float>();
  const int64_t* kd = kind.data_ptr<int64_t>();
  float* out = loss.data_ptr<float>();
  float* gyp = need_grad ? gy.data_ptr<float>() : nullptr;
  float* aap = need_grad ? aat.data_ptr<float>() : nullptr;
  at::parallel_for(0, S * R, 1, [&](int64_t begin, int64_t end) {
    const int64_t n = zb.bf16() ? K * B : 0;
    std::vector<float> scratch(3 * K * B + B), zf(n), pf(n), gzf(n), naf(n);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t s = t / R, r = t % R, block = r * K * B;
      const Pwl p{yk + t * P, P - 2, pa, pb, h};
      float* gz = need_grad ? gb.target(s, block, gzf.data()) : nullptr;
      float* na = need_grad ? nb.target(s, block, naf.data()) : nullptr;
      out[t] = reconstruction_block(kd[r], zb.read(s, block, K * B, zf.data()), pb_.read(s, block, K * B, pf.data()),
                                    gm + t * K * K, xs[s], K, B, p, gz, gyp ? gyp + t * P : nullptr, na,
                                    aap ? aap + t * K * K : nullptr, scratch.data());
      if (!gz) continue;
      sums.write(s, r * K, gz, K, B);
      gb.store(s, block, K * B, gz);
      nb.store(s, block, K * B, na);
    }
  });
  return {loss, gb.t, gy, nb.t, aat};
}

// Adam on the bank's weight rows, with the norm-constrained variant's projection and the bfloat16 copy
// the next step's products read, in one pass over each row while it is in cache (separately: Adam,
// then a norm and a division over the constrained rows, then a cast, each a pass over all weights in
// memory).  Adam as torch.optim.Adam (no weight decay, no amsgrad):
//     m <- m + (1 - b1)(g - m),  v <- b2 v + (1 - b2) g^2,
//     p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps),
// then p <- p / max(||p||, 1e-12) for the rows marked in `unit` (actfn.infomax.unit_rows_).
// `grad` is float32 or bfloat16 (the products' own output: no cast pass); `low`, if defined, receives
// bfloat16(p).  Rows are independent: the result does not depend on the number of threads.
namespace {
// One row: Adam, returning the sum of squares of the new values (for the projection).
template <typename grad_t>
float adam_row(float* p, const grad_t* g, float* m, float* v, int64_t d, float b1, float b2, float step_size,
               float root_bc2, float eps) {
  int64_t i = 0;
  float ss = 0.f;
#if defined(__AVX512F__)
  const __m512 c1 = _mm512_set1_ps(1.f - b1), vb2 = _mm512_set1_ps(b2), c2 = _mm512_set1_ps(1.f - b2);
  const __m512 ssz = _mm512_set1_ps(step_size), rb = _mm512_set1_ps(root_bc2), ve = _mm512_set1_ps(eps);
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= d; i += 16) {
    const __m512 gi = load16(g + i), m0 = _mm512_loadu_ps(m + i);
    const __m512 mi = _mm512_fmadd_ps(c1, _mm512_sub_ps(gi, m0), m0);
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), rb), ve);
    const __m512 pi = _mm512_sub_ps(_mm512_loadu_ps(p + i), _mm512_div_ps(_mm512_mul_ps(ssz, mi), denom));
    _mm512_storeu_ps(p + i, pi);
    acc = _mm512_fmadd_ps(pi, pi, acc);
  }
  ss = _mm512_reduce_add_ps(acc);
#endif
  for (; i < d; ++i) {
    const float gi = to_float(g[i]);
    const float mi = m[i] + (1.f - b1) * (gi - m[i]);
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float pi = p[i] - step_size * mi / (std::sqrt(vi) / root_bc2 + eps);
    p[i] = pi;
    ss += pi * pi;
  }
  return ss;
}

template <typename grad_t>
void adam_rows_impl(float* param, const grad_t* grad, float* m, float* v, const uint8_t* unit, at::BFloat16* low,
                    int64_t rows, int64_t d, float b1, float b2, float step_size, float root_bc2, float eps) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / d), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* p = param + r * d;
      const float ss = adam_row(p, grad + r * d, m + r * d, v + r * d, d, b1, b2, step_size, root_bc2, eps);
      if (unit && unit[r]) {
        const float norm = std::max(std::sqrt(ss), 1e-12f);
        for (int64_t i = 0; i < d; ++i) p[i] /= norm;
      }
      if (low) {
        at::BFloat16* lr = low + r * d;
        int64_t i = 0;
#if defined(__AVX512F__)
        for (; i + 16 <= d; i += 16) store16_bf16(lr + i, _mm512_loadu_ps(p + i));
#endif
        for (; i < d; ++i) lr[i] = at::BFloat16(p[i]);
      }
    }
  });
}
}  // namespace

void adam_rows(torch::Tensor param, torch::Tensor grad, torch::Tensor exp_avg, torch::Tensor exp_avg_sq,
               std::optional<torch::Tensor> unit_rows, std::optional<torch::Tensor> low_copy, double lr, double beta1,
               double beta2, double eps, int64_t step) {
  const torch::Tensor unit = unit_rows.value_or(torch::Tensor()), low = low_copy.value_or(torch::Tensor());
  TORCH_CHECK(param.is_contiguous() && grad.is_contiguous() && exp_avg.is_contiguous() && exp_avg_sq.is_contiguous(),
              "adam_rows: contiguous tensors");
  TORCH_CHECK(param.scalar_type() == at::kFloat && exp_avg.scalar_type() == at::kFloat &&
              exp_avg_sq.scalar_type() == at::kFloat, "adam_rows: float32 parameter and state");
  TORCH_CHECK(grad.numel() == param.numel() && exp_avg.numel() == param.numel() && exp_avg_sq.numel() == param.numel(),
              "adam_rows: parameter, gradient and state sizes differ");
  const int64_t d = param.size(-1), rows = param.numel() / d;
  const uint8_t* u = nullptr;
  if (unit.defined()) {
    TORCH_CHECK(unit.scalar_type() == at::kByte && unit.numel() == rows && unit.is_contiguous(),
                "adam_rows: unit must be uint8, one per row");
    u = unit.data_ptr<uint8_t>();
  }
  at::BFloat16* lo = nullptr;
  if (low.defined()) {
    TORCH_CHECK(low.scalar_type() == at::kBFloat16 && low.numel() == param.numel() && low.is_contiguous(),
                "adam_rows: low must be a contiguous bfloat16 tensor of the parameter's size");
    lo = low.data_ptr<at::BFloat16>();
  }
  const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  const float step_size = float(lr / bc1), root_bc2 = float(std::sqrt(bc2));
  if (grad.scalar_type() == at::kBFloat16)
    adam_rows_impl(param.data_ptr<float>(), grad.data_ptr<at::BFloat16>(), exp_avg.data_ptr<float>(),
                   exp_avg_sq.data_ptr<float>(), u, lo, rows, d, float(beta1), float(beta2), step_size, root_bc2,
                   float(eps));
  else {
    TORCH_CHECK(grad.scalar_type() == at::kFloat, "adam_rows: float32 or bfloat16 gradient");
    adam_rows_impl(param.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                   exp_avg_sq.data_ptr<float>(), u, lo, rows, d, float(beta1), float(beta2), step_size, root_bc2,
                   float(eps));
  }
}

// Flush denormals (FTZ and DAZ in MXCSR) on or off in the calling thread and in every thread of the
// OpenMP pool (torch's own: the extension shares its libgomp).  torch.set_flush_denormal sets the calling
// thread only, so half of a two-thread op still ran on denormals.  Returns the calling thread's previous
// setting.  (x86 only; elsewhere it does nothing and returns false.)
bool flush_denormals(bool on) {
#if defined(__SSE2__)
  constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bits 15 (flush to zero) and 6 (denormals are zero)
  const bool was = (_mm_getcsr() & kFtzDaz) == kFtzDaz;
  auto apply = [on] { _mm_setcsr(on ? (_mm_getcsr() | kFtzDaz) : (_mm_getcsr() & ~kFtzDaz)); };
  apply();
#pragma omp parallel
  apply();
  return was;
#else
  (void)on;
  return false;
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("kinds", []() { return std::vector<std::string>(kind_names, kind_names + KINDS); },
        "the activations this kernel has a branch for, by their index");
  m.def("flush_denormals", &flush_denormals, "FTZ/DAZ on or off in this thread and the OpenMP pool (x86)");
  m.def("reconstruction_blocks", &reconstruction_blocks, "f and the reconstruction loss of the reconstruction models (CPU)",
        py::arg("zt"), py::arg("proj"), py::arg("gram"), py::arg("xx"), py::arg("kinds"), py::arg("knots"), py::arg("lo"),
        py::arg("hi"), py::arg("need_grad"), py::arg("grad_out") = py::none(), py::arg("na_out") = py::none(),
        py::arg("row_sums") = py::none());
  m.def("adam_rows", &adam_rows, "Adam + unit-row projection + bfloat16 copy, row by row (CPU)");
  m.def("infomax_blocks", &infomax_blocks, "activation + InfoMax loss (+ gradient) per model block (CPU)",
        py::arg("zt"), py::arg("kinds"), py::arg("lam"), py::arg("knots"), py::arg("eps"), py::arg("lo"), py::arg("hi"),
        py::arg("need_grad"), py::arg("grad_out") = py::none(), py::arg("row_sums") = py::none());
}
