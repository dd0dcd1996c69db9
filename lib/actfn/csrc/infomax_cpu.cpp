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
// derivatives are those of actfn.infomax.activate (softplus with torch's threshold 20, leaky ReLU 0.01,
// the piecewise-linear activation of csrc/pwl_cpu.cpp).  In PyTorch the same work is about ten passes
// over all the models' activations in memory; here each model's block is read once and stays in
// cache.  Models are independent and each is done by one thread, so the results do not depend on the
// number of threads.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// the order of actfn.infomax.ACTIVATIONS
enum Kind : int64_t { IDENTITY = 0, RELU, SOFTMAX, TANH, LEAKY_RELU, SOFTPLUS, SWISH, PWL, KINDS };

struct Pwl {
  const float* y;   // the model's knot values (P)
  int64_t last;     // P - 2, the last segment
  float a, b, h;    // s = a z + b (a = 1/h, b = -lo/h, as float32 like the PyTorch path)
};

inline int64_t pwl_segment(float s, int64_t last) {
  float f = std::floor(s);
  f = (f >= 0.f) ? f : 0.f;  // NaN -> segment 0 (the output stays NaN through u)
  f = (f <= float(last)) ? f : float(last);
  return static_cast<int64_t>(f);
}

// exp(x) without calls or branches, so that the loops around it vectorise (libm's expf does not):
// x = n ln2 + r, |r| <= ln2 / 2, exp(r) by Cephes' degree-6 polynomial (about 2 ulp), 2^n in the
// exponent bits.  x is clamped to [-87, 88] (exp(-87) ~ 1.6e-38 stands in for anything smaller);
// callers restore NaN.
__attribute__((always_inline)) inline float exp_approx(float x) {
  x = x < -87.f ? -87.f : x;
  x = x > 88.f ? 88.f : x;
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;   // round to nearest
  float r = std::fma(n, -0.693359375f, x);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p * r, r, r) + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// log(1 + t) for t in [0, 1]: 2 atanh(s), s = t / (2 + t) <= 1/3, by its series to s^15 (no cancellation
// for small t)
__attribute__((always_inline)) inline float log1p_unit(float t) {
  const float s = t / (2.f + t), s2 = s * s;
  float p = 1.f / 15.f;
  p = std::fma(p, s2, 1.f / 13.f);
  p = std::fma(p, s2, 1.f / 11.f);
  p = std::fma(p, s2, 1.f / 9.f);
  p = std::fma(p, s2, 1.f / 7.f);
  p = std::fma(p, s2, 1.f / 5.f);
  p = std::fma(p, s2, 1.f / 3.f);
  p = std::fma(p, s2, 1.f);
  return 2.f * s * p;
}

// a = f(z) and d = f'(z) for one unit's row of n values (softmax is done across units, elsewhere).
// NaN inputs give NaN outputs.
void activate_row(int64_t kind, const float* __restrict z, float* __restrict a, float* __restrict d, int64_t n,
                  const Pwl& p) {
  switch (kind) {
    case IDENTITY:
      for (int64_t b = 0; b < n; ++b) a[b] = z[b], d[b] = 1.f;
      break;
    case RELU:
      for (int64_t b = 0; b < n; ++b) a[b] = z[b] > 0.f ? z[b] : 0.f * z[b], d[b] = z[b] > 0.f ? 1.f : 0.f;
      break;
    case TANH:
      for (int64_t b = 0; b < n; ++b) {
        // tanh|z| = 1 - 2 / (exp(2|z|) + 1); its odd series below |z| = 1/4 (where that form cancels)
        const float x = std::fabs(z[b]), x2 = x * x;
        float small = std::fma(x2, 62.f / 2835.f, -17.f / 315.f);
        small = std::fma(small, x2, 2.f / 15.f);
        small = std::fma(small, x2, -1.f / 3.f);
        small = std::fma(small * x2, x, x);
        const float big = 1.f - 2.f / (exp_approx(2.f * x) + 1.f);
        const float t = std::copysign(x < 0.25f ? small : big, z[b]);
        a[b] = z[b] == z[b] ? t : z[b];
        d[b] = 1.f - t * t;
      }
      break;
    case LEAKY_RELU:
      for (int64_t b = 0; b < n; ++b) a[b] = z[b] > 0.f ? z[b] : 0.01f * z[b], d[b] = z[b] > 0.f ? 1.f : 0.01f;
      break;
    case SOFTPLUS:
      for (int64_t b = 0; b < n; ++b) {
        // log(1 + e^z) = max(z, 0) + log(1 + e^-|z|); z itself above torch's threshold 20
        const float e = exp_approx(-std::fabs(z[b]));
        const float sp = (z[b] > 0.f ? z[b] : 0.f) + log1p_unit(e);
        a[b] = z[b] > 20.f ? z[b] : (z[b] == z[b] ? sp : z[b]);
        d[b] = z[b] > 20.f ? 1.f : (z[b] >= 0.f ? 1.f : e) / (1.f + e);
      }
      break;
    case SWISH:
      for (int64_t b = 0; b < n; ++b) {
        const float sig = 1.f / (1.f + exp_approx(-(z[b] > -80.f ? z[b] : -80.f)));
        a[b] = z[b] * sig;
        d[b] = sig * (1.f + z[b] * (1.f - sig));
      }
      break;
    case PWL:
      for (int64_t b = 0; b < n; ++b) {
        const float s = std::fma(z[b], p.a, p.b);
        const int64_t i = pwl_segment(s, p.last);
        const float rise = p.y[i + 1] - p.y[i];
        a[b] = std::fma(rise, s - float(i), p.y[i]);
        d[b] = rise / p.h;
      }
      break;
  }
}

// The knot gradient of PWL for one unit's row: a = left_i + rise_i u on segment i, two histograms
void pwl_knot_histogram(const float* z, const float* ga, int64_t n, const Pwl& p, float* g_left, float* g_rise) {
  for (int64_t b = 0; b < n; ++b) {
    const float s = std::fma(z[b], p.a, p.b);
    const int64_t i = pwl_segment(s, p.last);
    g_left[i] += ga[b];
    g_rise[i] += ga[b] * (s - float(i));
  }
}

// One model: z (K x B) -> its loss; if gz, dL/dz (K x B) and, for PWL, dL/dy into gy (P).
// scratch holds 4 K B + 3 K K floats.
float model_block(int64_t kind, float lam, float eps, const float* z, int64_t K, int64_t B, const Pwl& p,
                  float* gz, float* gy, float* scratch) {
  float* a = scratch;           // f(z), then the centred c
  float* ga = a + K * B;        // dL/da
  float* act = ga + K * B;      // f(z) (kept for softmax's derivative)
  float* deriv = act + K * B;   // f'(z) (not softmax)
  float* C = deriv + K * B;     // covariance, then G
  float* R = C + K * K;         // correlation
  float* off = R + K * K;       // R - I
  if (kind == SOFTMAX) {
    // across the K units of each sample: a column of the block
    for (int64_t b = 0; b < B; ++b) a[b] = z[b];
    for (int64_t k = 1; k < K; ++k)
      for (int64_t b = 0; b < B; ++b) a[b] = std::max(a[b], z[k * B + b]);    // the column max
    for (int64_t b = 0; b < B; ++b) ga[b] = 0.f;                               // the column sums
    for (int64_t k = 0; k < K; ++k)
      for (int64_t b = 0; b < B; ++b) {
        const float x = z[k * B + b] - a[b];
        act[k * B + b] = x == x ? exp_approx(x) : x;   // x <= 0 (NaN stays NaN)
        ga[b] += act[k * B + b];
      }
    for (int64_t k = 0; k < K; ++k)
      for (int64_t b = 0; b < B; ++b) act[k * B + b] /= ga[b];
  } else {
    for (int64_t k = 0; k < K; ++k) activate_row(kind, z + k * B, act + k * B, deriv + k * B, B, p);
  }
  // centre
  for (int64_t k = 0; k < K; ++k) {
    const float* row = act + k * B;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t b = 0; b < B; ++b) sum += row[b];
    const float mean = sum / float(B);
    for (int64_t b = 0; b < B; ++b) a[k * B + b] = row[b] - mean;
  }
  // C = c c^T / (B - 1): four dot products per pass over c_i (four independent sums, not one chain)
  const float inv = 1.f / float(B - 1);
  for (int64_t i = 0; i < K; ++i) {
    const float* ci = a + i * B;
    int64_t j = i;
    for (; j + 4 <= K; j += 4) {
      const float *c0 = a + j * B, *c1 = c0 + B, *c2 = c1 + B, *c3 = c2 + B;
      float d0 = 0.f, d1 = 0.f, d2 = 0.f, d3 = 0.f;
#pragma omp simd reduction(+ : d0, d1, d2, d3)
      for (int64_t b = 0; b < B; ++b) {
        d0 += ci[b] * c0[b];
        d1 += ci[b] * c1[b];
        d2 += ci[b] * c2[b];
        d3 += ci[b] * c3[b];
      }
      C[i * K + j] = C[j * K + i] = d0 * inv;
      C[i * K + j + 1] = C[(j + 1) * K + i] = d1 * inv;
      C[i * K + j + 2] = C[(j + 2) * K + i] = d2 * inv;
      C[i * K + j + 3] = C[(j + 3) * K + i] = d3 * inv;
    }
    for (; j < K; ++j) {
      const float* cj = a + j * B;
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t b = 0; b < B; ++b) dot += ci[b] * cj[b];
      C[i * K + j] = C[j * K + i] = dot * inv;
    }
  }
  std::vector<float> sd(K), inv_sd(K);
  double loss = 0.0;
  for (int64_t i = 0; i < K; ++i) {
    sd[i] = std::sqrt(std::max(C[i * K + i], 1e-8f));
    inv_sd[i] = 1.f / sd[i];
    loss -= std::log(double(C[i * K + i]) + eps);
  }
  double penalty = 0.0;
  for (int64_t i = 0; i < K; ++i) {
    float row = 0.f;
    const float* __restrict is = inv_sd.data();
#pragma omp simd reduction(+ : row)
    for (int64_t j = 0; j < K; ++j) {
      const float r = C[i * K + j] * (is[i] * is[j]);
      R[i * K + j] = r;
      off[i * K + j] = r - (i == j ? 1.f : 0.f);
      row += off[i * K + j] * off[i * K + j];
    }
    penalty += row;
  }
  loss += double(lam) * penalty;
  if (!gz) return float(loss);
  // G (in C's place): 2 lam (R - I)_ij / (s_i s_j) + d_ij [-1/(C_ii + eps) - (2 lam / s_i^2) sum_k (R - I)_ik R_ik]
  for (int64_t i = 0; i < K; ++i) {
    const float var = C[i * K + i];
    float through_sd = 0.f;
    for (int64_t k = 0; k < K; ++k) through_sd += off[i * K + k] * R[i * K + k];
    through_sd = var > 1e-8f ? 2.f * lam * through_sd / (sd[i] * sd[i]) : 0.f;
    for (int64_t j = 0; j < K; ++j) C[i * K + j] = 2.f * lam * off[i * K + j] * (inv_sd[i] * inv_sd[j]);
    C[i * K + i] += -1.f / (var + eps) - through_sd;
  }
  // dL/da = 2 G c / (B - 1), row by row, four rows of c per pass over the result row
  const float scale = 2.f * inv;
  for (int64_t i = 0; i < K; ++i) {
    float* __restrict g = ga + i * B;
    for (int64_t b = 0; b < B; ++b) g[b] = 0.f;
    int64_t j = 0;
    for (; j + 4 <= K; j += 4) {
      const float w0 = scale * C[i * K + j], w1 = scale * C[i * K + j + 1], w2 = scale * C[i * K + j + 2],
                  w3 = scale * C[i * K + j + 3];
      const float *__restrict c0 = a + j * B, *__restrict c1 = c0 + B, *__restrict c2 = c1 + B,
                  *__restrict c3 = c2 + B;
#pragma omp simd
      for (int64_t b = 0; b < B; ++b) g[b] += w0 * c0[b] + w1 * c1[b] + w2 * c2[b] + w3 * c3[b];
    }
    for (; j < K; ++j) {
      const float w = scale * C[i * K + j];
      const float* __restrict cj = a + j * B;
#pragma omp simd
      for (int64_t b = 0; b < B; ++b) g[b] += w * cj[b];
    }
  }
  if (kind == SOFTMAX) {
    // dz_k = a_k (ga_k - sum_k' a_k' ga_k'), per sample
    float* dot = a;  // c is no longer needed
    for (int64_t b = 0; b < B; ++b) dot[b] = 0.f;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t b = 0; b < B; ++b) dot[b] += act[k * B + b] * ga[k * B + b];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t b = 0; b < B; ++b) gz[k * B + b] = act[k * B + b] * (ga[k * B + b] - dot[b]);
    return float(loss);
  }
  for (int64_t e = 0; e < K * B; ++e) gz[e] = ga[e] * deriv[e];
  if (kind == PWL && gy) {
    const int64_t segs = p.last + 1;
    std::vector<float> hist(2 * segs, 0.f);
    for (int64_t k = 0; k < K; ++k) pwl_knot_histogram(z + k * B, ga + k * B, B, p, hist.data(), hist.data() + segs);
    // a = left_i + rise_i u with left_i = y_i, rise_i = y_{i+1} - y_i
    for (int64_t i = 0; i < segs; ++i) {
      gy[i] += hist[i] - hist[segs + i];
      gy[i + 1] += hist[segs + i];
    }
  }
  return float(loss);
}

}  // namespace

// zt (S, M K, B) float32; kinds (M,) int64; lam (M,) float32; knots (S, M, P) float32.
// Returns loss (S, M) and, if need_grad, dL/dzt (S, M K, B) and dL/dknots (S, M, P) for grad_loss = 1.
std::vector<torch::Tensor> infomax_blocks(torch::Tensor zt, torch::Tensor kinds, torch::Tensor lam,
                                          torch::Tensor knots, double eps, double lo, double hi, bool need_grad) {
  TORCH_CHECK(zt.device().is_cpu() && zt.scalar_type() == torch::kFloat32 && zt.dim() == 3,
              "infomax_blocks: zt must be a float32 CPU tensor (S, M K, B)");
  const int64_t S = zt.size(0), M = kinds.size(0), B = zt.size(2);
  TORCH_CHECK(M > 0 && zt.size(1) % M == 0, "infomax_blocks: zt rows are not a multiple of the models");
  TORCH_CHECK(B >= 2, "infomax_blocks: the batch needs at least two samples");
  const int64_t K = zt.size(1) / M;
  TORCH_CHECK(knots.dim() == 3 && knots.size(0) == S && knots.size(1) == M && knots.size(2) >= 2,
              "infomax_blocks: knots must be (S, M, P)");
  zt = zt.contiguous();
  auto kind = kinds.to(torch::kInt64).contiguous();
  auto lamf = lam.to(torch::kFloat32).contiguous();
  auto y = knots.to(torch::kFloat32).contiguous();
  const int64_t P = y.size(2);
  TORCH_CHECK(kind.numel() == 0 || (kind.min().item<int64_t>() >= 0 && kind.max().item<int64_t>() < KINDS),
              "infomax_blocks: unknown activation kind");
  auto loss = torch::empty({S, M}, zt.options());
  torch::Tensor gz, gy;
  if (need_grad) {
    gz = torch::empty_like(zt);
    gy = torch::zeros({S, M, P}, zt.options());
  }
  const float h = float((hi - lo) / double(P - 1));
  const float pa = float(1.0 / ((hi - lo) / double(P - 1))), pb = float(-lo / ((hi - lo) / double(P - 1)));
  const float* z = zt.data_ptr<float>();
  const int64_t* kd = kind.data_ptr<int64_t>();
  const float* lm = lamf.data_ptr<float>();
  const float* yk = y.data_ptr<float>();
  float* out = loss.data_ptr<float>();
  float* gzp = need_grad ? gz.data_ptr<float>() : nullptr;
  float* gyp = need_grad ? gy.data_ptr<float>() : nullptr;
  at::parallel_for(0, S * M, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(4 * K * B + 3 * K * K);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t s = t / M, m = t % M;
      const Pwl p{yk + t * P, P - 2, pa, pb, h};
      const int64_t block = (s * M + m) * K * B;
      out[t] = model_block(kd[m], lm[m], float(eps), z + block, K, B, p, gzp ? gzp + block : nullptr,
                           gyp ? gyp + t * P : nullptr, scratch.data());
    }
  });
  return {loss, gz, gy};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("infomax_blocks", &infomax_blocks, "activation + InfoMax loss (+ gradient) per model block (CPU)");
}
