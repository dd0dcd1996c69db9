// The InfoMax bank's per-model arithmetic (included by infomax_cpu.cpp only): the activations and
// their derivatives, the covariance and its products, and one model's loss and gradient
// (model_block, reconstruction_block).  The entry points over a bank's tensors are in infomax_cpu.cpp.
#pragma once

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

}  // namespace
