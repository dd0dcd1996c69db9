// The vector loops of the piecewise-linear activation's CPU kernels (included by pwl_cpu.cpp only):
// runs of elements that share one knot table, forward and backward, in AVX2 and AVX-512, and their
// per-channel plane walks, and the cache-aligned tables they read.  The scalar loops, the layouts and
// the entry points are in pwl_cpu.cpp.
#pragma once

#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t kChunk = 16384;  // elements per partial histogram (shared knots)

// The AVX-512 build's backward pass in ymm halves (Ymm8x2) rather than zmm registers (Zmm16), the same
// bits either way: on Intel cores (why: above Table32y; set when the module loads, and by
// set_backward_lanes).  AMD's Zen 4 runs 512-bit instructions as two 256-bit halves on all its ports,
// and there the zmm path is the faster one.
bool g_ymm_backward = false;

// Per-channel 4x4 planes in the backward pass: samples side by side with kChannelCopies histogram
// copies (the default, on every CPU; see backward_samples_avx512), or in memory order with one copy
// per channel and block (opt-in: ACTFN_KERNELS_TUNED=1 sets it on Intel CPUs, where it is faster, as
// benchmarks/ measures).  The two sum the same terms in another order, so they differ in the last bits:
// the default keeps every CPU on the same bits.
bool g_small_planes_in_order = false;

template <typename acc_t>
inline int64_t segment(acc_t s, int64_t last) {
  acc_t f = std::floor(s);
  f = (f >= acc_t(0)) ? f : acc_t(0);              // also maps NaN to segment 0 (its output stays NaN)
  f = (f <= acc_t(last)) ? f : acc_t(last);
  return static_cast<int64_t>(f);
}


#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
// Eight floats at a time: s = a x + b, segment = clamp(floor(s)) (NaN -> 0 via max), two gathers, one FMA.
inline void segment8(__m256 xv, __m256 a, __m256 b, __m256 last, __m256* s, __m256i* i, __m256* u) {
  *s = _mm256_fmadd_ps(xv, a, b);
  __m256 f = _mm256_floor_ps(*s);
  f = _mm256_max_ps(f, _mm256_setzero_ps());  // max(NaN, 0) = 0: NaN inputs read segment 0
  f = _mm256_min_ps(f, last);
  *u = _mm256_sub_ps(*s, f);
  *i = _mm256_cvttps_epi32(f);
}

// One (g, g u) pair of a histogram as the low half of a vector: a plain 64-bit load (movlps, which
// merges it into a register, costs a shuffle as well on Intel cores, where shuffles share one port).
inline __m128 load_pair(const double* h) { return _mm_castpd_ps(_mm_load_sd(h)); }

// Add the pair in the low half of p to the histogram pair at h (the high half is never stored).
__attribute__((always_inline)) inline void add_pair(double* h, __m128 p) {
  _mm_store_sd(h, _mm_castps_pd(_mm_add_ps(load_pair(h), p)));
}

// Add the pairs (g_k, g_k u_k) of eight elements to hist[(copy(k) * copy_stride + i_k) * 2 + {0, 1}],
// copy(k) = (copy_base + k) mod copies (a power of two): one 64-bit load, add and store per element,
// and with 16 copies no two elements of a vector in the same copy (neighbours often share a segment:
// one copy would chain their stores through memory).
__attribute__((always_inline)) inline void hist_add8(float* hist, int64_t copy_stride, int copies, __m256i i, __m256 gg, __m256 gu,
                      int copy_base = 0) {
  alignas(32) int32_t iv[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(iv), i);
  const __m256 lo = _mm256_unpacklo_ps(gg, gu), hi = _mm256_unpackhi_ps(gg, gu);
  // lo = [p0 p1 | p4 p5], hi = [p2 p3 | p6 p7] where p_k = (g_k, g_k u_k)
  const __m128 q[4] = {_mm256_castps256_ps128(lo), _mm256_castps256_ps128(hi), _mm256_extractf128_ps(lo, 1),
                       _mm256_extractf128_ps(hi, 1)};
  const int order[8] = {0, 0, 1, 1, 2, 2, 3, 3};  // element k lives in q[order[k]], half k & 1
  for (int k = 0; k < 8; ++k) {
    __m128 pk = (k & 1) ? _mm_movehl_ps(q[order[k]], q[order[k]]) : q[order[k]];
    add_pair(reinterpret_cast<double*>(hist + (((copy_base + k) & (copies - 1)) * copy_stride + iv[k]) * 2), pk);
  }
}

inline int64_t forward_run_avx2(const float* x, float* out, const float* left, const float* rise, int64_t n,
                                int64_t last, float a, float b) {
  const __m256 av = _mm256_set1_ps(a), bv = _mm256_set1_ps(b), lv = _mm256_set1_ps(float(last));
  int64_t e = 0;
  for (; e + 8 <= n; e += 8) {
    __m256 s, u;
    __m256i i;
    segment8(_mm256_loadu_ps(x + e), av, bv, lv, &s, &i, &u);
    __m256 l = _mm256_i32gather_ps(left, i, 4), r = _mm256_i32gather_ps(rise, i, 4);
    _mm256_storeu_ps(out + e, _mm256_fmadd_ps(r, u, l));
  }
  return e;  // the scalar loop finishes the tail
}

// Input gradient and, if hist != nullptr, the two histograms as (g, g u) pairs in `copies`
// interleaved copies hist[copy][segment][2], copy k at offset k * copy_stride segments (independent
// copies break the store-to-load chains when neighbouring elements fall in the same segment;
// copy_stride 0 means a single copy).
inline int64_t backward_run_avx2(const float* x, const float* g, float* gx, const float* slope, float* hist,
                                 int64_t copy_stride, int copies, int64_t n, int64_t last, float a, float b) {
  const __m256 av = _mm256_set1_ps(a), bv = _mm256_set1_ps(b), lv = _mm256_set1_ps(float(last));
  int64_t e = 0;
  for (; e + 8 <= n; e += 8) {
    __m256 s, u;
    __m256i i;
    segment8(_mm256_loadu_ps(x + e), av, bv, lv, &s, &i, &u);
    __m256 gg = _mm256_loadu_ps(g + e);
    if (gx) _mm256_storeu_ps(gx + e, _mm256_mul_ps(gg, _mm256_i32gather_ps(slope, i, 4)));
    // element e goes to copy e mod copies, as lane e mod 16 does in the AVX-512 loops: the same sums
    // in the same order, so the AVX2 and AVX-512 builds give the same bits
    if (hist) hist_add8(hist, copy_stride, copies, i, gg, _mm256_mul_ps(gg, u), int(e & 15));
  }
  return e;
}
#if defined(__AVX512F__)
// Sixteen floats at a time, and no gathers: with at most 32 segments a table fits in two zmm registers
// and one permute (vpermt2ps) reads sixteen entries (gathers are slow on some CPUs, AMD's among them).
struct Table32 {
  __m512 lo, hi;
};

inline Table32 load_table32(const float* t, int64_t segs) {
  const __mmask16 lo_mask = segs >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << segs) - 1);
  const __mmask16 hi_mask = segs >= 32 ? __mmask16(0xFFFF) : segs > 16 ? __mmask16((1u << (segs - 16)) - 1) : 0;
  return {_mm512_maskz_loadu_ps(lo_mask, t), _mm512_maskz_loadu_ps(hi_mask, t + 16)};
}

inline __m512 lookup32(const Table32& t, __m512i i) { return _mm512_permutex2var_ps(t.lo, i, t.hi); }

inline void segment16(__m512 xv, __m512 a, __m512 b, __m512 last, __m512* s, __m512i* i, __m512* u) {
  *s = _mm512_fmadd_ps(xv, a, b);
  __m512 f = _mm512_roundscale_ps(*s, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  f = _mm512_max_ps(f, _mm512_setzero_ps());  // max(NaN, 0) = 0: NaN inputs read segment 0
  f = _mm512_min_ps(f, last);
  *u = _mm512_sub_ps(*s, f);
  *i = _mm512_cvttps_epi32(f);
}

// Sixteen elements: out = left_i + rise_i u.
__attribute__((always_inline)) inline void forward16(const float* x, float* out, const Table32& l, const Table32& r,
                                                     __m512 av, __m512 bv, __m512 lv) {
  __m512 s, u;
  __m512i i;
  segment16(_mm512_loadu_ps(x), av, bv, lv, &s, &i, &u);
  _mm512_storeu_ps(out, _mm512_fmadd_ps(lookup32(r, i), u, lookup32(l, i)));
}

// Byte offsets of each lane's histogram copy: lane k adds to copy k mod copies (see hist_add8).
inline __m512i copy_offsets16(int64_t copy_stride, int copies) {
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  return _mm512_mullo_epi32(_mm512_and_si512(lanes, _mm512_set1_epi32(copies - 1)),
                            _mm512_set1_epi32(int32_t(copy_stride * 2 * sizeof(float))));
}

// Add the pairs (g_k, g_k u_k) of sixteen elements to the histogram copies, as hist_add8 does, with
// fewer instructions per element: the byte offsets are computed as one vector (unsigned, so no sign
// extension per element) and the pairs are put in element order by two permutes.  (Where the loads
// that follow the stores to the same bins set the pace, as on per-channel 4x4 planes, the instruction
// count matters less.)
__attribute__((always_inline)) inline void hist_add16(float* hist, __m512i copy_offsets, __m512i i, __m512 gg,
                                                      __m512 gu) {
  alignas(64) uint32_t off[16];
  _mm512_store_si512(off, _mm512_add_epi32(_mm512_slli_epi32(i, 3), copy_offsets));
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const __m512 pairs[2] = {_mm512_permutex2var_ps(gg, lo, gu), _mm512_permutex2var_ps(gg, hi, gu)};
  char* base = reinterpret_cast<char*>(hist);
  for (int k = 0; k < 16; k += 2) {
    const __m512 v = pairs[k >> 3];
    const int quarter = (k >> 1) & 3;
    const __m128 q = quarter == 0   ? _mm512_castps512_ps128(v)
                     : quarter == 1 ? _mm512_extractf32x4_ps(v, 1)
                     : quarter == 2 ? _mm512_extractf32x4_ps(v, 2)
                                    : _mm512_extractf32x4_ps(v, 3);
    add_pair(reinterpret_cast<double*>(base + off[k]), q);
    add_pair(reinterpret_cast<double*>(base + off[k + 1]), _mm_movehl_ps(q, q));
  }
}

// Sixteen elements: gx = g slope_i (if gx), and the (g, g u) pairs into the histogram copies (if hist;
// copy_offsets from copy_offsets16).
__attribute__((always_inline)) inline void backward16(const float* x, const float* g, float* gx, const Table32& sl,
                                                      float* hist, __m512i copy_offsets, __m512 av, __m512 bv,
                                                      __m512 lv) {
  __m512 s, u;
  __m512i i;
  segment16(_mm512_loadu_ps(x), av, bv, lv, &s, &i, &u);
  const __m512 gg = _mm512_loadu_ps(g);
  if (gx) _mm512_storeu_ps(gx, _mm512_mul_ps(gg, lookup32(sl, i)));
  if (hist) hist_add16(hist, copy_offsets, i, gg, _mm512_mul_ps(gg, u));
}

// The same sixteen lanes as two halves of eight in ymm registers (AVX-512VL permutes, no gathers):
// the same segments, products and histogram updates in the same order as backward16, so the same
// bits.  Why: on Intel cores a 512-bit instruction in flight shuts off one of the three ports' vector
// units, and the histogram's many small loads, adds and shuffles then queue on the other two.
struct Table32y {
  __m256 a, b, c, d;  // entries 0-7, 8-15, 16-23, 24-31
};

inline Table32y load_table32y(const float* t, int64_t segs) {
  auto part = [&](int64_t from) {
    const int64_t n = std::min<int64_t>(std::max<int64_t>(segs - from, 0), 8);
    return _mm256_maskz_loadu_ps(__mmask8((1u << n) - 1), t + from);
  };
  return {part(0), part(8), part(16), part(24)};
}

inline __m256 lookup32y(const Table32y& t, __m256i i) {
  const __m256 lo = _mm256_permutex2var_ps(t.a, i, t.b), hi = _mm256_permutex2var_ps(t.c, i, t.d);
  return _mm256_mask_blend_ps(_mm256_test_epi32_mask(i, _mm256_set1_epi32(16)), lo, hi);
}

// Byte offsets of the histogram copies of lanes first_lane .. first_lane + 7 (as copy_offsets16).
inline __m256i copy_offsets8(int64_t copy_stride, int copies, int first_lane) {
  const __m256i lanes = _mm256_add_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(first_lane));
  return _mm256_mullo_epi32(_mm256_and_si256(lanes, _mm256_set1_epi32(copies - 1)),
                            _mm256_set1_epi32(int32_t(copy_stride * 2 * sizeof(float))));
}

// hist_add16 for eight lanes (the AVX2 build keeps hist_add8, with scalar offsets).  The offsets leave
// the vector as four 64-bit halves, split in general registers: GCC turned a stored off[8] into eight
// lane extracts (vpextrd, valignd), cross-lane shuffles that queue on port 5 with the table permutes;
// this way three do.
__attribute__((always_inline)) inline void hist_add8y(float* hist, __m256i copy_offsets, __m256i i, __m256 gg,
                                                      __m256 gu) {
  const __m256i offsets = _mm256_add_epi32(_mm256_slli_epi32(i, 3), copy_offsets);
  const __m128i low = _mm256_castsi256_si128(offsets), high = _mm256_extracti128_si256(offsets, 1);
  const uint64_t q0 = uint64_t(_mm_cvtsi128_si64(low)), q1 = uint64_t(_mm_extract_epi64(low, 1)),
                 q2 = uint64_t(_mm_cvtsi128_si64(high)), q3 = uint64_t(_mm_extract_epi64(high, 1));
  const uint32_t off[8] = {uint32_t(q0), uint32_t(q0 >> 32), uint32_t(q1), uint32_t(q1 >> 32),
                           uint32_t(q2), uint32_t(q2 >> 32), uint32_t(q3), uint32_t(q3 >> 32)};
  const __m256 lo = _mm256_unpacklo_ps(gg, gu), hi = _mm256_unpackhi_ps(gg, gu);
  // lo = [p0 p1 | p4 p5], hi = [p2 p3 | p6 p7] where p_k = (g_k, g_k u_k)
  const __m128 q[4] = {_mm256_castps256_ps128(lo), _mm256_castps256_ps128(hi), _mm256_extractf128_ps(lo, 1),
                       _mm256_extractf128_ps(hi, 1)};
  char* base = reinterpret_cast<char*>(hist);
  for (int k = 0; k < 8; k += 2) {
    add_pair(reinterpret_cast<double*>(base + off[k]), q[k >> 1]);
    add_pair(reinterpret_cast<double*>(base + off[k + 1]), _mm_movehl_ps(q[k >> 1], q[k >> 1]));
  }
}

__attribute__((always_inline)) inline void backward8y(const float* x, const float* g, float* gx, const Table32y& sl,
                                                      float* hist, __m256i copy_offsets, __m256 av, __m256 bv,
                                                      __m256 lv) {
  __m256 s, u;
  __m256i i;
  segment8(_mm256_loadu_ps(x), av, bv, lv, &s, &i, &u);
  const __m256 gg = _mm256_loadu_ps(g);
  if (gx) _mm256_storeu_ps(gx, _mm256_mul_ps(gg, lookup32y(sl, i)));
  if (hist) hist_add8y(hist, copy_offsets, i, gg, _mm256_mul_ps(gg, u));
}

// The backward pass's lanes: sixteen elements at a time with one slope table at a time, in zmm
// registers (Zmm16) or as two ymm halves (Ymm8x2); see backward_lanes for which runs.
struct Zmm16 {
  __m512 av, bv, lv;
  __m512i offsets;
  Table32 sl;
  int64_t segs;
  Zmm16(float a, float b, int64_t last, int64_t segs, int64_t copy_stride, int copies)
      : av(_mm512_set1_ps(a)), bv(_mm512_set1_ps(b)), lv(_mm512_set1_ps(float(last))),
        offsets(copy_offsets16(copy_stride, copies)), segs(segs) {}
  void table(const float* slope) { sl = load_table32(slope, segs); }
  __attribute__((always_inline)) void operator()(const float* x, const float* g, float* gx, float* hist) const {
    backward16(x, g, gx, sl, hist, offsets, av, bv, lv);
  }
};

struct Ymm8x2 {
  __m256 av, bv, lv;
  __m256i lo, hi;
  Table32y sl;
  int64_t segs;
  Ymm8x2(float a, float b, int64_t last, int64_t segs, int64_t copy_stride, int copies)
      : av(_mm256_set1_ps(a)), bv(_mm256_set1_ps(b)), lv(_mm256_set1_ps(float(last))),
        lo(copy_offsets8(copy_stride, copies, 0)), hi(copy_offsets8(copy_stride, copies, 8)), segs(segs) {}
  void table(const float* slope) { sl = load_table32y(slope, segs); }
  __attribute__((always_inline)) void operator()(const float* x, const float* g, float* gx, float* hist) const {
    backward8y(x, g, gx, sl, hist, lo, av, bv, lv);
    backward8y(x + 8, g + 8, gx ? gx + 8 : nullptr, sl, hist, hi, av, bv, lv);
  }
};

__attribute__((always_inline)) inline int64_t forward_run_avx512(const float* x, float* out, const float* left, const float* rise, int64_t n,
                                  int64_t last, float a, float b) {
  const Table32 l = load_table32(left, last + 1), r = load_table32(rise, last + 1);
  const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b), lv = _mm512_set1_ps(float(last));
  int64_t e = 0;
  for (; e + 16 <= n; e += 16) forward16(x + e, out + e, l, r, av, bv, lv);
  return e;
}

template <class Lanes>
inline int64_t backward_run_avx512(const float* x, const float* g, float* gx, const float* slope, float* hist,
                                   int64_t copy_stride, int copies, int64_t n, int64_t last, float a, float b) {
  Lanes lanes(a, b, last, last + 1, copy_stride, copies);
  lanes.table(slope);
  int64_t e = 0;
  for (; e + 16 <= n; e += 16) lanes(x + e, g + e, gx ? gx + e : nullptr, hist);
  return e;
}
#endif

// The widest path this build has: AVX-512 permutes for up to 32 segments, else AVX2 gathers.
__attribute__((always_inline)) inline int64_t forward_run_simd(const float* x, float* out, const float* left, const float* rise, int64_t n,
                                int64_t last, float a, float b) {
  int64_t e = 0;
#if defined(__AVX512F__)
  if (last < 32) e = forward_run_avx512(x, out, left, rise, n, last, a, b);
#endif
  // (a remainder of 8 after the 16-wide loop: planes of 8 rely on the 8-wide loop finishing them)
  return e + forward_run_avx2(x + e, out + e, left, rise, n - e, last, a, b);
}

__attribute__((always_inline)) inline int64_t backward_run_simd(const float* x, const float* g, float* gx, const float* slope, float* hist,
                                 int64_t copy_stride, int copies, int64_t n, int64_t last, float a, float b) {
  int64_t e = 0;
#if defined(__AVX512F__)
  if (last < 32)
    e = g_ymm_backward ? backward_run_avx512<Ymm8x2>(x, g, gx, slope, hist, copy_stride, copies, n, last, a, b)
                       : backward_run_avx512<Zmm16>(x, g, gx, slope, hist, copy_stride, copies, n, last, a, b);
#endif
  return e + backward_run_avx2(x + e, g + e, gx ? gx + e : nullptr, slope, hist, copy_stride, copies, n - e, last,
                               a, b);
}

#if defined(__AVX512F__)
// Per-channel tables, planes whose size is a multiple of 16 (4x4 planes included) and
// at most 32 segments: as the AVX2 versions below, with each plane's tables read straight into registers.
inline void forward_planes_avx512(const float* x, float* out, const float* left, const float* rise, int64_t segs,
                                  int64_t inner, int64_t channels, int64_t planes, int64_t last, float a, float b) {
  const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b), lv = _mm512_set1_ps(float(last));
  for (int64_t p = 0, c = 0; p < planes; ++p, c = (c + 1 == channels) ? 0 : c + 1) {
    const Table32 l = load_table32(left + c * segs, segs), r = load_table32(rise + c * segs, segs);
    for (int64_t e = p * inner; e < (p + 1) * inner; e += 16) forward16(x + e, out + e, l, r, av, bv, lv);
  }
}

// Per-channel tables, 16-element (4x4) planes: channel after channel, `samples` samples side by
// side, so that each channel's tables are read once for them all (read per plane, they cost more than
// the plane; in channel groups, the group's tables stay in L1 but the reads jump every 4 KB).
inline void forward_samples_avx512(const float* x, float* out, const float* left, const float* rise, int64_t segs,
                                   int64_t channels, int64_t samples, int64_t last, float a, float b) {
  const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b), lv = _mm512_set1_ps(float(last));
  const int64_t stride = channels * 16;
  for (int64_t c = 0; c < channels; ++c) {
    const Table32 l = load_table32(left + c * segs, segs), r = load_table32(rise + c * segs, segs);
    for (int64_t o = 0; o < samples; ++o) forward16(x + o * stride + c * 16, out + o * stride + c * 16, l, r, av, bv, lv);
  }
}

// The backward pass of forward_samples_avx512 (4x4 planes): channel after channel, `samples` samples
// side by side, so that each channel's slope table is read once for them, and its histogram stays in
// L1 across them (in memory order every plane's updates went to the L2-resident histogram of its
// channel).  Four samples at a time: eight would be three streams a sample, too many for the
// prefetchers.
template <class Lanes>
inline void backward_samples_avx512(const float* x, const float* g, float* gx, const float* slope, float* hist,
                                    int64_t segs, int64_t channels, int64_t samples, int64_t last, float a, float b,
                                    int copies) {
  Lanes lanes(a, b, last, segs, segs, copies);
  const int64_t stride = channels * 16;
  for (int64_t c = 0; c < channels; ++c) {
    lanes.table(slope + c * segs);
    float* h = hist ? hist + c * copies * segs * 2 : nullptr;
    for (int64_t o = 0; o < samples; ++o) {
      const int64_t off = o * stride + c * 16;
      lanes(x + off, g + off, gx ? gx + off : nullptr, h);
    }
  }
}

template <class Lanes>
inline void backward_planes_avx512(const float* x, const float* g, float* gx, const float* slope, float* hist,
                                   int64_t segs, int64_t inner, int64_t channels, int64_t planes, int64_t last,
                                   float a, float b, int copies) {
  Lanes lanes(a, b, last, segs, segs, copies);
  for (int64_t p = 0, c = 0; p < planes; ++p, c = (c + 1 == channels) ? 0 : c + 1) {
    lanes.table(slope + c * segs);
    float* h = hist ? hist + c * copies * segs * 2 : nullptr;
    for (int64_t e = p * inner; e < (p + 1) * inner; e += 16) lanes(x + e, g + e, gx ? gx + e : nullptr, h);
  }
}
#endif

// Per-channel tables, planes whose size is a multiple of 8 (4x4 planes of late layers): the planes
// of a block in memory order, channel by a counter (a division per plane would cost more than the
// plane).  The tables are (channels, segs) row-major; histograms one per channel, hist[c][seg][2]
// (the rows of hundreds of channels already spread the updates).
inline void forward_planes_avx2(const float* x, float* out, const float* left, const float* rise, int64_t segs,
                                int64_t inner, int64_t channels, int64_t planes, int64_t last, float a, float b) {
  for (int64_t p = 0, c = 0; p < planes; ++p, c = (c + 1 == channels) ? 0 : c + 1)
    forward_run_simd(x + p * inner, out + p * inner, left + c * segs, rise + c * segs, inner, last, a, b);
}

inline void backward_planes_avx2(const float* x, const float* g, float* gx, const float* slope, float* hist,
                                 int64_t segs, int64_t inner, int64_t channels, int64_t planes, int64_t last,
                                 float a, float b, int copies = 1) {
  for (int64_t p = 0, c = 0; p < planes; ++p, c = (c + 1 == channels) ? 0 : c + 1)
    backward_run_simd(x + p * inner, g + p * inner, gx ? gx + p * inner : nullptr, slope + c * segs,
                      hist ? hist + c * copies * segs * 2 : nullptr, copies > 1 ? segs : 0, copies, inner, last,
                      a, b);
}
#endif

// Tables on cache-line boundaries: a 33-knot row is two 64-byte vectors, which a misaligned row
// splits over three lines.
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};
template <typename T>
using Table = std::vector<T, CacheLineAllocator<T>>;

}  // namespace
