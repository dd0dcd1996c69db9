// Piecewise-linear activation on a uniform knot grid: fused CPU kernels.
//
// One pass over x in forward (segment index by floor, two table reads, one multiply-add) and one
// pass over (x, grad) in backward (input gradient and the knot gradient as two weighted
// histograms).  Histograms are accumulated in fixed-size chunks (shared knots) or per channel
// (per-channel knots) and summed in a fixed order, so the knot gradient is bit-identical from run
// to run whatever the number of threads.
#include <torch/extension.h>
#include <torch/library.h>
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>
#include <cmath>
#include <algorithm>
#include <type_traits>
#include <memory>
#include <vector>

#include "pwl_simd.h"

namespace {

// x viewed as (outer, channels, inner); per_channel tables have `channels` rows of `segs` entries.
struct Layout {
  int64_t outer, channels, inner, segs;
  bool per_channel;
};

Layout layout_of(const torch::Tensor& x, const torch::Tensor& y) {
  Layout L;
  L.segs = y.size(-1) - 1;
  L.per_channel = y.dim() == 2;
  if (L.per_channel) {
    TORCH_CHECK(x.dim() >= 2 && x.size(1) == y.size(0), "per-channel knots: x must have ", y.size(0),
                " channels on dim 1, got shape ", x.sizes());
    L.outer = x.size(0);
    L.channels = x.size(1);
    L.inner = x.numel() / std::max<int64_t>(1, L.outer * L.channels);
  } else {
    L.outer = 1;
    L.channels = 1;
    L.inner = x.numel();
  }
  return L;
}

// A zeroed buffer of n values, reused from call to call (per calling thread): the partial histograms
// are up to a few MB, and a fresh block that size costs more in page faults than the pass itself.
template <typename T>
T* scratch(size_t n) {
  static thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

template <typename T>
T* zeroed_scratch(size_t n) {
  T* buffer = scratch<T>(n);
  std::fill(buffer, buffer + n, T(0));
  return buffer;
}

constexpr int64_t kSideBySide = 8;  // 4x4 planes in the forward pass: samples read side by side
constexpr int64_t kSideBySideBackward = 4;  // and in the backward pass (see backward_samples_avx512)
constexpr int64_t kGroupChannels = 64;  // per-channel small planes: channels whose tables are read together
constexpr int kCopies = 16;  // interleaved histogram copies, one per lane (see hist_add8)
// Per-channel planes on the AVX-512 paths: lane k of a vector adds to copy k mod 4 of its channel's
// histogram, so that the lanes of one vector that fall in one segment (neighbouring pixels often do)
// do not all wait on one another's stores.  (With 16 copies the 4x4 layers' histograms outgrow L2.)
constexpr int kChannelCopies = 4;
constexpr int64_t kWalkPlanes = kChunk / 16;  // per-channel planes at least this large: walk each channel's planes

template <typename scalar_t, typename acc_t>
void forward_run(const scalar_t* x, scalar_t* out, const acc_t* left, const acc_t* rise, int64_t n,
                 int64_t last, acc_t a, acc_t b) {
  int64_t e = 0;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<scalar_t, float>) e = forward_run_simd(x, out, left, rise, n, last, a, b);
#endif
  for (; e < n; ++e) {
    acc_t s = acc_t(x[e]) * a + b;
    int64_t i = segment(s, last);
    out[e] = scalar_t(left[i] + rise[i] * (s - acc_t(i)));
  }
}

// Input gradient (if gx) and the (g, g u) histogram pairs (if hist; see backward_run_avx2).
template <typename scalar_t, typename acc_t>
void backward_run(const scalar_t* x, const scalar_t* g, scalar_t* gx, const acc_t* slope, acc_t* hist,
                  int64_t copy_stride, int copies, int64_t n, int64_t last, acc_t a, acc_t b) {
  int64_t e = 0;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<scalar_t, float>)
    e = backward_run_simd(x, g, gx, slope, hist, copy_stride, copies, n, last, a, b);
#endif
  for (; e < n; ++e) {
    acc_t s = acc_t(x[e]) * a + b;
    int64_t i = segment(s, last);
    acc_t ge = acc_t(g[e]);
    if (gx) gx[e] = scalar_t(ge * slope[i]);
    if (hist) {
      hist[2 * i] += ge;
      hist[2 * i + 1] += ge * (s - acc_t(i));
    }
  }
}

template <typename scalar_t, typename acc_t>
void forward_kernel(const scalar_t* x, scalar_t* out, const acc_t* left, const acc_t* rise,
                    const Layout& L, acc_t a, acc_t b) {
  const int64_t last = L.segs - 1;
  if (!L.per_channel) {
    at::parallel_for(0, L.inner, kChunk, [&](int64_t begin, int64_t end) {
      forward_run<scalar_t, acc_t>(x + begin, out + begin, left, rise, end - begin, last, a, b);
    });
    return;
  }
  // planes in sample blocks of about 16 chunks, channels in order (planes can be 4x4: no division per plane)
  const int64_t plane_block = L.channels * L.inner;
  const int64_t per_block = std::max<int64_t>(1, (16 * kChunk + plane_block - 1) / plane_block);
  at::parallel_for(0, (L.outer + per_block - 1) / per_block, 1, [&](int64_t bb, int64_t be) {
    const int64_t o0 = bb * per_block, o1 = std::min(L.outer, be * per_block);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (L.inner == 16 && last < 32) {
        for (int64_t o = o0; o < o1; o += kSideBySide)
          forward_samples_avx512(x + o * plane_block, out + o * plane_block, left, rise, L.segs, L.channels,
                                 std::min(kSideBySide, o1 - o), last, a, b);
        return;
      }
      if (L.inner % 16 == 0 && last < 32) {
        // larger planes: groups of channels, sample after sample within a group, so that the group's
        // tables stay in L1 (all channels' tables would not)
        for (int64_t c0 = 0; c0 < L.channels; c0 += kGroupChannels) {
          const int64_t cg = std::min<int64_t>(kGroupChannels, L.channels - c0);
          for (int64_t o = o0; o < o1; ++o) {
            const int64_t off = (o * L.channels + c0) * L.inner;
            forward_planes_avx512(x + off, out + off, left + c0 * L.segs, rise + c0 * L.segs, L.segs, L.inner, cg, cg,
                                  last, a, b);
          }
        }
        return;
      }
    }
#endif
#if defined(__AVX2__) && defined(__FMA__)
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (L.inner % 8 == 0) {
        forward_planes_avx2(x + o0 * plane_block, out + o0 * plane_block, left, rise, L.segs, L.inner, L.channels,
                            (o1 - o0) * L.channels, last, a, b);
        return;
      }
    }
#endif
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t c = 0; c < L.channels; ++c) {
        const int64_t off = (o * L.channels + c) * L.inner;
        forward_run<scalar_t, acc_t>(x + off, out + off, left + c * L.segs, rise + c * L.segs, L.inner, last, a, b);
      }
  });
}

// Sum the interleaved (g, g u) copies of one owner into g_left, g_rise (fixed order).
template <typename acc_t>
void fold_copies(const acc_t* hist, acc_t* g_left, acc_t* g_rise, int64_t segs, int copies = kCopies) {
  for (int k = 0; k < copies; ++k)
    for (int64_t i = 0; i < segs; ++i) {
      g_left[i] += hist[(k * segs + i) * 2];
      g_rise[i] += hist[(k * segs + i) * 2 + 1];
    }
}

template <typename scalar_t, typename acc_t>
void backward_kernel(const scalar_t* x, const scalar_t* g, scalar_t* gx, const acc_t* slope,
                     acc_t* g_left, acc_t* g_rise, const Layout& L, acc_t a, acc_t b) {
  const int64_t last = L.segs - 1, hsize = kCopies * L.segs * 2;
  if (!L.per_channel) {
    if (!g_left) {  // input gradient only: no histogram
      at::parallel_for(0, L.inner, kChunk, [&](int64_t begin, int64_t end) {
        backward_run<scalar_t, acc_t>(x + begin, g + begin, gx + begin, slope, nullptr, L.segs, kCopies,
                                      end - begin, last, a, b);
      });
      return;
    }
    // fixed chunks, each with its own partial histograms, summed in chunk order: deterministic
    // whatever the number of threads
    const int64_t chunks = (L.inner + kChunk - 1) / kChunk;
    acc_t* part = zeroed_scratch<acc_t>(static_cast<size_t>(chunks * hsize));
    at::parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const int64_t begin = c * kChunk, n = std::min(kChunk, L.inner - begin);
        backward_run<scalar_t, acc_t>(x + begin, g + begin, gx ? gx + begin : nullptr, slope,
                                      part + c * hsize, L.segs, kCopies, n, last, a, b);
      }
    });
    for (int64_t c = 0; c < chunks; ++c) fold_copies(part + c * hsize, g_left, g_rise, L.segs);
    return;
  }
  if (L.inner >= kWalkPlanes) {
    // per channel, large planes: one task owns a channel's histograms and walks its planes in order
    at::parallel_for(0, L.channels, 1, [&](int64_t cb, int64_t ce) {
      std::vector<acc_t> hist(g_left ? static_cast<size_t>(hsize) : 0);
      for (int64_t c = cb; c < ce; ++c) {
        std::fill(hist.begin(), hist.end(), acc_t(0));
        for (int64_t o = 0; o < L.outer; ++o) {
          const int64_t off = (o * L.channels + c) * L.inner;
          backward_run<scalar_t, acc_t>(x + off, g + off, gx ? gx + off : nullptr, slope + c * L.segs,
                                        g_left ? hist.data() : nullptr, L.segs, kCopies, L.inner, last, a,
                                        b);
        }
        if (g_left) fold_copies(hist.data(), g_left + c * L.segs, g_rise + c * L.segs, L.segs);
      }
    });
    return;
  }
  // per channel, small planes (4x4 included): walking a channel's planes would stride through memory, so
  // fixed blocks of samples are read in memory order, each block with one histogram per channel (see
  // backward_planes_avx2; in L2), summed in block order.  A block holds at least 16 times its
  // histograms' size in x (one copy's size), so that zeroing and summing the histograms stays small
  // beside the pass; the price is fewer blocks to share among many cores.
  // Planes of 16k elements (at most 32 segments) give each channel kChannelCopies histogram copies,
  // lane e mod 4 of a plane to copy e mod 4, in the AVX-512 and the AVX2 loops alike: the copies, and so
  // the order of the sums, depend on the shape alone, and both builds give the same bits (the tuned
  // order, opt-in, is the exception).  The task that fills a block's histograms zeroes them; they are
  // summed in parallel over channels (by the calling thread alone, the copies cost too much).
  const bool copied = std::is_same_v<scalar_t, float> && L.inner % 16 == 0 && last < 32;
#if defined(__AVX512F__)
  const bool wide = copied;
#else
  const bool wide = false;
#endif
  const bool side_by_side = wide && L.inner == 16 && !g_small_planes_in_order;
  const int copies = copied && (L.inner > 16 || !g_small_planes_in_order) ? kChannelCopies : 1;
  const int64_t plane_block = L.channels * L.inner, one_copy = L.channels * L.segs * 2, table = one_copy * copies;
  const int64_t per_block = std::max<int64_t>(1, (std::max<int64_t>(16 * kChunk, 16 * one_copy) + plane_block - 1) / plane_block);
  const int64_t blocks = (L.outer + per_block - 1) / per_block;
  acc_t* part = g_left ? scratch<acc_t>(static_cast<size_t>(blocks * table)) : nullptr;
  at::parallel_for(0, blocks, 1, [&](int64_t bb, int64_t be) {
    for (int64_t blk = bb; blk < be; ++blk) {
      acc_t* hist = g_left ? part + blk * table : nullptr;
      if (hist) std::fill(hist, hist + table, acc_t(0));
      const int64_t o0 = blk * per_block, o1 = std::min(L.outer, (blk + 1) * per_block);
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (side_by_side) {
          for (int64_t o = o0; o < o1; o += kSideBySideBackward) {
            const int64_t off = o * plane_block, samples = std::min(kSideBySideBackward, o1 - o);
            if (g_ymm_backward)
              backward_samples_avx512<Ymm8x2>(x + off, g + off, gx ? gx + off : nullptr, slope, hist, L.segs,
                                              L.channels, samples, last, a, b, copies);
            else
              backward_samples_avx512<Zmm16>(x + off, g + off, gx ? gx + off : nullptr, slope, hist, L.segs,
                                             L.channels, samples, last, a, b, copies);
          }
          continue;
        }
        if (wide) {
          const int64_t off = o0 * plane_block, planes = (o1 - o0) * L.channels;
          if (g_ymm_backward)
            backward_planes_avx512<Ymm8x2>(x + off, g + off, gx ? gx + off : nullptr, slope, hist, L.segs, L.inner,
                                           L.channels, planes, last, a, b, copies);
          else
            backward_planes_avx512<Zmm16>(x + off, g + off, gx ? gx + off : nullptr, slope, hist, L.segs, L.inner,
                                          L.channels, planes, last, a, b, copies);
          continue;
        }
      }
#endif
#if defined(__AVX2__) && defined(__FMA__)
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (L.inner % 8 == 0) {
          backward_planes_avx2(x + o0 * plane_block, g + o0 * plane_block, gx ? gx + o0 * plane_block : nullptr,
                               slope, hist, L.segs, L.inner, L.channels, (o1 - o0) * L.channels, last, a, b,
                               copies);
          continue;
        }
      }
#endif
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t c = 0; c < L.channels; ++c) {
          const int64_t off = (o * L.channels + c) * L.inner;
          backward_run<scalar_t, acc_t>(x + off, g + off, gx ? gx + off : nullptr, slope + c * L.segs,
                                        hist ? hist + c * copies * L.segs * 2 : nullptr, copies > 1 ? L.segs : 0,
                                        copies, L.inner, last, a, b);
        }
    }
  });
  // each channel's sums in block order, then copy order: deterministic whatever the number of threads
  if (g_left)
    at::parallel_for(0, L.channels, 64, [&](int64_t cb, int64_t ce) {
      for (int64_t blk = 0; blk < blocks; ++blk)
        for (int64_t c = cb; c < ce; ++c)
          fold_copies(part + blk * table + c * copies * L.segs * 2, g_left + c * L.segs, g_rise + c * L.segs, L.segs,
                      copies);
    });
}

// Tables in the accumulation type: left value y_i and rise y_{i+1} - y_i of each segment, one row of
// segs per knot row (plain loops: a dozen tensor ops on 33 numbers cost more than a small layer's pass).
template <typename acc_t>
void tables(const torch::Tensor& y, Table<acc_t>& left, Table<acc_t>& rise) {
  auto ya = y.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
  const int64_t n = ya.size(-1), rows = ya.numel() / n;
  const acc_t* v = ya.template data_ptr<acc_t>();
  left.resize(rows * (n - 1));
  rise.resize(rows * (n - 1));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i + 1 < n; ++i) {
      left[r * (n - 1) + i] = v[r * n + i];
      rise[r * (n - 1) + i] = v[r * n + i + 1] - v[r * n + i];
    }
}

void check_inputs(const torch::Tensor& x, const torch::Tensor& y) {
  TORCH_CHECK(x.device().is_cpu() && y.device().is_cpu(), "pwl_cpu: tensors must be on the CPU");
  TORCH_CHECK(y.dim() == 1 || y.dim() == 2, "pwl_cpu: knot values must be (N,) or (C, N)");
  TORCH_CHECK(y.size(-1) >= 2, "pwl_cpu: at least two knots");
}

}  // namespace

torch::Tensor pwl_forward(torch::Tensor x, torch::Tensor y, double lo, double hi) {
  check_inputs(x, y);
  x = x.contiguous();
  auto out = torch::empty_like(x);
  const Layout L = layout_of(x, y);
  const double h = (hi - lo) / double(L.segs);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "pwl_forward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    Table<acc_t> left, rise;
    tables(y, left, rise);
    forward_kernel<scalar_t, acc_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), left.data(), rise.data(), L,
                                    acc_t(1.0 / h), acc_t(-lo / h));
  });
  return out;
}

// Returns (grad_x or undefined, grad_y in y's dtype or undefined).
std::vector<torch::Tensor> pwl_backward(torch::Tensor grad, torch::Tensor x, torch::Tensor y, double lo,
                                        double hi, bool need_x, bool need_y) {
  check_inputs(x, y);
  x = x.contiguous();
  grad = grad.contiguous();
  TORCH_CHECK(grad.sizes() == x.sizes(), "pwl_backward: gradient and input shapes differ");
  const Layout L = layout_of(x, y);
  const double h = (hi - lo) / double(L.segs);
  torch::Tensor gx, gy;
  if (need_x) gx = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "pwl_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    Table<acc_t> left, slope;
    tables(y, left, slope);
    for (auto& v : slope) v /= acc_t(h);
    const int64_t rows = L.per_channel ? y.size(0) : 1;
    std::vector<acc_t> hist(need_y ? 2 * rows * L.segs : 0, acc_t(0));
    acc_t* gl = need_y ? hist.data() : nullptr;
    acc_t* gr = need_y ? hist.data() + rows * L.segs : nullptr;
    backward_kernel<scalar_t, acc_t>(x.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                     need_x ? gx.data_ptr<scalar_t>() : nullptr, slope.data(), gl, gr, L,
                                     acc_t(1.0 / h), acc_t(-lo / h));
    if (need_y) {
      // out = left_i + rise_i u with left_i = y_i, rise_i = y_{i+1} - y_i
      auto full = torch::empty({rows, L.segs + 1}, x.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
      acc_t* f = full.data_ptr<acc_t>();
      for (int64_t r = 0; r < rows; ++r) {
        const acc_t *l = gl + r * L.segs, *u = gr + r * L.segs;
        acc_t* row = f + r * (L.segs + 1);
        row[0] = l[0] - u[0];
        for (int64_t i = 1; i < L.segs; ++i) row[i] = (l[i] - u[i]) + u[i - 1];
        row[L.segs] = u[L.segs - 1];
      }
      gy = (L.per_channel ? full : full.view({L.segs + 1})).to(y.scalar_type());
    }
  });
  return {gx, gy};
}

// The operator actfn::pwl.  Its schema, its CPU kernels and its autograd are registered here, once,
// when Python calls register_op() on the build it uses (not at load: the tests load other builds of
// this file beside it); its fake implementation is registered in Python (actfn.pwl.op), its CUDA one
// by the CUDA kernels.  The autograd node calls the two operators through the dispatcher, so it serves
// every device.

namespace {

torch::Tensor pwl_call(const torch::Tensor& x, const torch::Tensor& y, double lo, double hi) {
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("actfn::pwl", "").typed<torch::Tensor(const torch::Tensor&, const torch::Tensor&, double, double)>();
  return op.call(x, y, lo, hi);
}

std::tuple<torch::Tensor, torch::Tensor> pwl_backward_call(const torch::Tensor& grad, const torch::Tensor& x,
                                                           const torch::Tensor& y, double lo, double hi,
                                                           bool need_x, bool need_y) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("actfn::pwl_backward", "")
                       .typed<std::tuple<torch::Tensor, torch::Tensor>(const torch::Tensor&, const torch::Tensor&,
                                                                       const torch::Tensor&, double, double, bool,
                                                                       bool)>();
  return op.call(grad, x, y, lo, hi, need_x, need_y);
}

// saves the input and the knots, as SiLU saves its input
struct PwlFunction : public torch::autograd::Function<PwlFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& y,
                               double lo, double hi) {
    ctx->save_for_backward({x, y});
    ctx->saved_data["lo"] = lo;
    ctx->saved_data["hi"] = hi;
    at::AutoDispatchBelowADInplaceOrView guard;
    return pwl_call(x, y, lo, hi);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool need_x = ctx->needs_input_grad(0), need_y = ctx->needs_input_grad(1);
    auto [gx, gy] = pwl_backward_call(grads[0], saved[0], saved[1], ctx->saved_data["lo"].toDouble(),
                                      ctx->saved_data["hi"].toDouble(), need_x, need_y);
    return {need_x ? gx : torch::Tensor(), need_y ? gy : torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor pwl_autograd(const torch::Tensor& x, const torch::Tensor& y, double lo, double hi) {
  return PwlFunction::apply(x, y, lo, hi);
}

// the operator's CPU kernels: an unneeded gradient comes back empty (the schema has no optional outputs)
torch::Tensor pwl_cpu(const torch::Tensor& x, const torch::Tensor& y, double lo, double hi) {
  return pwl_forward(x, y, lo, hi);
}

std::tuple<torch::Tensor, torch::Tensor> pwl_backward_cpu(const torch::Tensor& grad, const torch::Tensor& x,
                                                          const torch::Tensor& y, double lo, double hi, bool need_x,
                                                          bool need_y) {
  auto g = pwl_backward(grad, x, y, lo, hi, need_x, need_y);
  return {g[0].defined() ? g[0] : x.new_empty({0}), g[1].defined() ? g[1] : y.new_empty({0})};
}

std::vector<std::unique_ptr<torch::Library>> g_libraries;

bool register_op() {
  if (!g_libraries.empty()) return false;
  auto def = std::make_unique<torch::Library>(torch::Library::DEF, "actfn", std::nullopt, __FILE__, __LINE__);
  def->def("pwl(Tensor x, Tensor y, float lo, float hi) -> Tensor");
  def->def("pwl_backward(Tensor grad, Tensor x, Tensor y, float lo, float hi, bool need_x, bool need_y) -> (Tensor, Tensor)");
  auto cpu = std::make_unique<torch::Library>(torch::Library::IMPL, "actfn", c10::DispatchKey::CPU, __FILE__, __LINE__);
  cpu->impl("pwl", TORCH_FN(pwl_cpu));
  cpu->impl("pwl_backward", TORCH_FN(pwl_backward_cpu));
  auto autograd = std::make_unique<torch::Library>(torch::Library::IMPL, "actfn", c10::DispatchKey::Autograd,
                                                   __FILE__, __LINE__);
  autograd->impl("pwl", TORCH_FN(pwl_autograd));
  g_libraries.push_back(std::move(def));
  g_libraries.push_back(std::move(cpu));
  g_libraries.push_back(std::move(autograd));
  return true;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
#if defined(__AVX512F__)
  __builtin_cpu_init();
  g_ymm_backward = __builtin_cpu_is("intel");   // (the same bits as zmm16: not a choice of order)
#endif
  m.def("set_backward_lanes", [](const std::string& lanes) {
    TORCH_CHECK(lanes == "zmm16" || lanes == "ymm8x2", "backward lanes must be zmm16 or ymm8x2, got ", lanes);
    g_ymm_backward = lanes == "ymm8x2";
  }, "the AVX-512 build's backward pass: zmm16 (sixteen lanes in zmm registers) or ymm8x2 (two ymm halves; "
     "the default on Intel CPUs); the same bits either way");
  m.def("set_small_planes_in_order", [](bool in_order) { g_small_planes_in_order = in_order; },
        "per-channel 4x4 planes, backward pass (AVX-512 builds): samples side by side with four histogram "
        "copies (the default) or in memory order with one (opt-in); the same sums in another order");
  m.def("small_planes_in_order", []() { return g_small_planes_in_order; });
  m.def("backward_lanes", []() {
#if defined(__AVX512F__)
    return std::string(g_ymm_backward ? "ymm8x2" : "zmm16");
#elif defined(__AVX2__) && defined(__FMA__)
    return std::string("ymm8");
#else
    return std::string("scalar");
#endif
  }, "the backward pass's lanes: zmm16 or ymm8x2 (AVX-512 builds), ymm8 (AVX2 build) or scalar");
  m.def("forward", &pwl_forward, "piecewise-linear forward (CPU)");
  m.def("backward", &pwl_backward, "piecewise-linear backward (CPU)");
  m.def("register_op", &register_op, "register the operator actfn::pwl with its CPU kernels and autograd (once)");
}
