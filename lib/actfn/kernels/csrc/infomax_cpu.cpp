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
#include <optional>
#if defined(__AVX512F__) || defined(__SSE2__)
#include <immintrin.h>
#endif
#include <string>
#include <vector>

namespace {

// the branches of activate_row, by the index actfn.activations gives each (KERNEL_KINDS); kind_names
// lists them by name so that Python checks the two agree when the kernel loads
enum Kind : int64_t { IDENTITY = 0, RELU, SOFTMAX, TANH, LEAKY_RELU, SOFTPLUS, SWISH, PWL, KINDS };
const char* const kind_names[KINDS] = {"identity", "relu", "softmax", "tanh", "leaky_relu", "softplus", "swish", "pwl"};

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

#if defined(__AVX512F__)
// [sum(a0), sum(a1), sum(a2), sum(a3)]
__attribute__((always_inline)) inline __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  auto half = [](__m512 a) {
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
  };
  const __m256 b01 = _mm256_hadd_ps(half(a0), half(a1)), b23 = _mm256_hadd_ps(half(a2), half(a3));
  const __m256 b = _mm256_hadd_ps(b01, b23);   // per 128-bit lane: [a0 a1 a2 a3] partial sums
  return _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
}

// C = c c^T * scale for c (K x B) row-major, K % 4 == 0, B % 16 == 0: 4 x 4 tiles of C, each a pass of
// sixteen independent vector sums over the batch (the upper triangle, mirrored).
void covariance_tiles(const float* c, float* C, int64_t K, int64_t B, float scale) {
  const __m128 sv = _mm_set1_ps(scale);
  for (int64_t i0 = 0; i0 < K; i0 += 4)
    for (int64_t j0 = i0; j0 < K; j0 += 4) {
      __m512 acc[4][4];
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_setzero_ps();
      for (int64_t b = 0; b < B; b += 16) {
        __m512 ci[4], cj[4];
        for (int r = 0; r < 4; ++r) ci[r] = _mm512_loadu_ps(c + (i0 + r) * B + b);
        for (int q = 0; q < 4; ++q) cj[q] = _mm512_loadu_ps(c + (j0 + q) * B + b);
        for (int r = 0; r < 4; ++r)
          for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_fmadd_ps(ci[r], cj[q], acc[r][q]);
      }
      for (int r = 0; r < 4; ++r) {
        alignas(16) float row[4];
        _mm_store_ps(row, _mm_mul_ps(reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), sv));
        for (int q = 0; q < 4; ++q) C[(i0 + r) * K + j0 + q] = C[(j0 + q) * K + i0 + r] = row[q];
      }
    }
}

// out = W c * scale for W (K x K), c (K x B) row-major, K % 4 == 0, B % 16 == 0: blocks of 4 rows x NB
// vectors of the batch in registers, one pass over c's rows per block.
template <int NB>
void rows_times_tiles(const float* W, const float* c, float* out, int64_t K, int64_t B, float scale) {
  for (int64_t i0 = 0; i0 < K; i0 += 4)
    for (int64_t b0 = 0; b0 < B; b0 += 16 * NB) {
      __m512 acc[4][NB];
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < NB; ++q) acc[r][q] = _mm512_setzero_ps();
      for (int64_t j = 0; j < K; ++j) {
        __m512 cj[NB];
        for (int q = 0; q < NB; ++q) cj[q] = _mm512_loadu_ps(c + j * B + b0 + 16 * q);
        for (int r = 0; r < 4; ++r) {
          const __m512 w = _mm512_set1_ps(W[(i0 + r) * K + j]);
          for (int q = 0; q < NB; ++q) acc[r][q] = _mm512_fmadd_ps(w, cj[q], acc[r][q]);
        }
      }
      const __m512 sv = _mm512_set1_ps(scale);
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < NB; ++q) _mm512_storeu_ps(out + (i0 + r) * B + b0 + 16 * q, _mm512_mul_ps(acc[r][q], sv));
    }
}
#endif

// a = f(z) into act (K x B) and, except for softmax, f'(z) into deriv; softmax is across the K units of
// each sample (a column of the block).  col: B floats of scratch.
void activate_block(int64_t kind, const float* z, int64_t K, int64_t B, const Pwl& p, float* act, float* deriv,
                    float* col) {
  if (kind != SOFTMAX) {
    for (int64_t k = 0; k < K; ++k) activate_row(kind, z + k * B, act + k * B, deriv + k * B, B, p);
    return;
  }
  float* sums = deriv;   // (softmax has no elementwise derivative: deriv's first row is scratch)
  for (int64_t b = 0; b < B; ++b) col[b] = z[b];
  for (int64_t k = 1; k < K; ++k)
    for (int64_t b = 0; b < B; ++b) col[b] = std::max(col[b], z[k * B + b]);    // the column max
  for (int64_t b = 0; b < B; ++b) sums[b] = 0.f;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t b = 0; b < B; ++b) {
      const float x = z[k * B + b] - col[b];
      act[k * B + b] = x == x ? exp_approx(x) : x;   // x <= 0 (NaN stays NaN)
      sums[b] += act[k * B + b];
    }
  for (int64_t k = 0; k < K; ++k)
    for (int64_t b = 0; b < B; ++b) act[k * B + b] /= sums[b];
}

// C = c c^T * scale (K x K) for c (K x B): register tiles (covariance_tiles) where the shape allows, else
// four dot products per pass over c_i (four independent sums, not one chain)
void gram_matrix(const float* c, float* C, int64_t K, int64_t B, float scale) {
#if defined(__AVX512F__)
  if (K % 4 == 0 && B % 16 == 0) {
    covariance_tiles(c, C, K, B, scale);
    return;
  }
#endif
  for (int64_t i = 0; i < K; ++i) {
    const float* ci = c + i * B;
    int64_t j = i;
    for (; j + 4 <= K; j += 4) {
      const float *c0 = c + j * B, *c1 = c0 + B, *c2 = c1 + B, *c3 = c2 + B;
      float d0 = 0.f, d1 = 0.f, d2 = 0.f, d3 = 0.f;
#pragma omp simd reduction(+ : d0, d1, d2, d3)
      for (int64_t b = 0; b < B; ++b) {
        d0 += ci[b] * c0[b];
        d1 += ci[b] * c1[b];
        d2 += ci[b] * c2[b];
        d3 += ci[b] * c3[b];
      }
      C[i * K + j] = C[j * K + i] = d0 * scale;
      C[i * K + j + 1] = C[(j + 1) * K + i] = d1 * scale;
      C[i * K + j + 2] = C[(j + 2) * K + i] = d2 * scale;
      C[i * K + j + 3] = C[(j + 3) * K + i] = d3 * scale;
    }
    for (; j < K; ++j) {
      const float* cj = c + j * B;
      float dot = 0.f;
#pragma omp simd reduction(+ : dot)
      for (int64_t b = 0; b < B; ++b) dot += ci[b] * cj[b];
      C[i * K + j] = C[j * K + i] = dot * scale;
    }
  }
}

// out = W c * scale (K x B) for W (K x K), c (K x B): register tiles (rows_times_tiles) where the shape
// allows, else row by row, four rows of c per pass over the result row
void matrix_times_rows(const float* W, const float* c, float* out, int64_t K, int64_t B, float scale) {
#if defined(__AVX512F__)
  if (K % 4 == 0 && B % 16 == 0) {
    if (B % 64 == 0) rows_times_tiles<4>(W, c, out, K, B, scale);
    else if (B % 32 == 0) rows_times_tiles<2>(W, c, out, K, B, scale);
    else rows_times_tiles<1>(W, c, out, K, B, scale);
    return;
  }
#endif
  for (int64_t i = 0; i < K; ++i) {
    float* __restrict g = out + i * B;
    for (int64_t b = 0; b < B; ++b) g[b] = 0.f;
    int64_t j = 0;
    for (; j + 4 <= K; j += 4) {
      const float w0 = scale * W[i * K + j], w1 = scale * W[i * K + j + 1], w2 = scale * W[i * K + j + 2],
                  w3 = scale * W[i * K + j + 3];
      const float *__restrict c0 = c + j * B, *__restrict c1 = c0 + B, *__restrict c2 = c1 + B,
                  *__restrict c3 = c2 + B;
#pragma omp simd
      for (int64_t b = 0; b < B; ++b) g[b] += w0 * c0[b] + w1 * c1[b] + w2 * c2[b] + w3 * c3[b];
    }
    for (; j < K; ++j) {
      const float w = scale * W[i * K + j];
      const float* __restrict cj = c + j * B;
#pragma omp simd
      for (int64_t b = 0; b < B; ++b) g[b] += w * cj[b];
    }
  }
}

// dL/dz (K x B) from dL/da through f (act, deriv from activate_block), and for PWL dL/dy added into gy
// (P).  col: B floats of scratch.
void through_activation(int64_t kind, const float* z, const float* act, const float* deriv, const float* ga,
                        int64_t K, int64_t B, const Pwl& p, float* gz, float* gy, float* col) {
  if (kind == SOFTMAX) {
    // dz_k = a_k (ga_k - sum_k' a_k' ga_k'), per sample
    for (int64_t b = 0; b < B; ++b) col[b] = 0.f;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t b = 0; b < B; ++b) col[b] += act[k * B + b] * ga[k * B + b];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t b = 0; b < B; ++b) gz[k * B + b] = act[k * B + b] * (ga[k * B + b] - col[b]);
    return;
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
}

// One model: z (K x B) -> its InfoMax loss; if gz, dL/dz (K x B) and, for PWL, dL/dy into gy (P).
// scratch holds 4 K B + 3 K K + B floats.
float model_block(int64_t kind, float lam, float eps, const float* z, int64_t K, int64_t B, const Pwl& p,
                  float* gz, float* gy, float* scratch) {
  float* a = scratch;           // the centred c
  float* ga = a + K * B;        // dL/da
  float* act = ga + K * B;      // f(z)
  float* deriv = act + K * B;   // f'(z) (not softmax)
  float* C = deriv + K * B;     // covariance, then G
  float* R = C + K * K;         // correlation
  float* off = R + K * K;       // R - I
  float* col = off + K * K;     // one sample's worth of scratch
  activate_block(kind, z, K, B, p, act, deriv, col);
  // centre
  for (int64_t k = 0; k < K; ++k) {
    const float* row = act + k * B;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t b = 0; b < B; ++b) sum += row[b];
    const float mean = sum / float(B);
    for (int64_t b = 0; b < B; ++b) a[k * B + b] = row[b] - mean;
  }
  // C = c c^T / (B - 1)
  const float inv = 1.f / float(B - 1);
  gram_matrix(a, C, K, B, inv);
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
  // dL/da = 2 G c / (B - 1)
  matrix_times_rows(C, a, ga, K, B, 2.f * inv);
  through_activation(kind, z, act, deriv, ga, K, B, p, gz, gy, col);
  return float(loss);
}

// One reconstruction model (the decoder stored as W'^T, K x D): z (K x B), proj = W'^T x^T (K x B, the
// batch's projections), M = W'^T W' (K x K), xx = mean_n ||x_n||^2 ->
//     L = mean_n ||x_n - W' a_n||^2 = xx + (1/B) sum_n (a_n^T M a_n - 2 a_n . proj_n)
// (the expansion of actfn.infomax.ReconstructionLoss).  If gz: dL/da = (2/B)(M a - proj) through f into
// gz (and PWL's gy), and the two factors of dL/dW'^T = (2/B)(a a^T) W'^T - (2/B) a x: aat = (2/B) a a^T
// (K x K) and na = -(2/B) a (K x B).  scratch holds 3 K B + B floats.
float reconstruction_block(int64_t kind, const float* z, const float* proj, const float* M, float xx, int64_t K,
                           int64_t B, const Pwl& p, float* gz, float* gy, float* na, float* aat, float* scratch) {
  float* act = scratch;         // f(z)
  float* deriv = act + K * B;   // f'(z) (not softmax)
  float* ma = deriv + K * B;    // M a, then dL/da
  float* col = ma + K * B;
  activate_block(kind, z, K, B, p, act, deriv, col);
  matrix_times_rows(M, act, ma, K, B, 1.f);
  double quad = 0.0;
  for (int64_t k = 0; k < K; ++k) {
    float row = 0.f;
#pragma omp simd reduction(+ : row)
    for (int64_t b = 0; b < B; ++b) row += act[k * B + b] * (ma[k * B + b] - 2.f * proj[k * B + b]);
    quad += row;
  }
  const float loss = float(double(xx) + quad / double(B));
  if (!gz) return loss;
  const float two_b = 2.f / float(B);
  for (int64_t e = 0; e < K * B; ++e) ma[e] = two_b * (ma[e] - proj[e]);
  through_activation(kind, z, act, deriv, ma, K, B, p, gz, gy, col);
  for (int64_t e = 0; e < K * B; ++e) na[e] = -two_b * act[e];
  gram_matrix(act, aat, K, B, two_b);
  return loss;
}

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
