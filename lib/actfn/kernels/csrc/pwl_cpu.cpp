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

namespace {

constexpr int64_t kChunk = 16384;  // elements per partial histogram (shared knots)

// The AVX-512 build's backward pass in ymm halves (Ymm8x2) rather than zmm registers (Zmm16), the same
// bits either way: on Intel cores (why: above Table32y; set when the module loads, and by set_backward_lanes).
// In-process A/B on an Intel Xeon VM, backward pass: 128x64x16x16 12 % faster per channel and 10 %
// shared, 256x512x4x4 2-4 % per channel and 9 % shared.  AMD's Zen 4 runs 512-bit instructions as two
// 256-bit halves on all its ports, and there the zmm path was the faster one.
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
// merges it into a register, costs a shuffle as well on Intel cores, where shuffles share one port;
// measured on an Intel Xeon: backward pass 4-8 % faster in every mode and shape of the benchmark).
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
    if (hist) hist_add8(hist, copy_stride, copies, i, gg, _mm256_mul_ps(gg, u));
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
// extension per element) and the pairs are put in element order by two permutes.  Measured on an AMD
// EPYC (Zen 4): shared knots (16 copies), backward pass 5 % faster; per-channel 4x4 planes (one copy,
// a fresh histogram every 64 elements), no change: there the loads that follow the stores to the same
// bins set the pace, not the instruction count.
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

// hist_add16 for eight lanes (the AVX2 build's hist_add8, with scalar offsets, was measured faster there
// on per-channel planes, and is kept).  The offsets leave the vector as four 64-bit halves, split in
// general registers: GCC turned a stored off[8] into eight lane extracts (vpextrd, valignd), cross-lane
// shuffles that queue on port 5 with the table permutes; this way three do.  In-process A/B of the
// backward pass on an Intel Xeon VM, 4 runs of 15 rounds, same bits, time over a build of the old source
// (two builds of one source differed by up to 8 %): 0.90-0.93 on 256x512x4x4 per channel, 0.85-0.92 on
// 128x64x16x16 per channel, 0.91-0.97 on 256x512x4x4 shared.  Through memory instead (the store kept
// by an empty asm) it was 11 % slower.
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
// channel).  Measured on an AMD EPYC (Zen 4), 256x512x4x4: fwd+bwd 5-7 % faster with 4 samples, 4 %
// with 2, 22 % slower with 8 (3 streams a sample: too many for the prefetchers).
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
// (more copies per channel were measured not to help: the rows of hundreds of channels already
// spread the updates).
inline void forward_planes_avx2(const float* x, float* out, const float* left, const float* rise, int64_t segs,
                                int64_t inner, int64_t channels, int64_t planes, int64_t last, float a, float b) {
  for (int64_t p = 0, c = 0; p < planes; ++p, c = (c + 1 == channels) ? 0 : c + 1)
    forward_run_simd(x + p * inner, out + p * inner, left + c * segs, rise + c * segs, inner, last, a, b);
}

inline void backward_planes_avx2(const float* x, const float* g, float* gx, const float* slope, float* hist,
                                 int64_t segs, int64_t inner, int64_t channels, int64_t planes, int64_t last,
                                 float a, float b) {
  for (int64_t p = 0, c = 0; p < planes; ++p, c = (c + 1 == channels) ? 0 : c + 1)
    backward_run_simd(x + p * inner, g + p * inner, gx ? gx + p * inner : nullptr, slope + c * segs,
                      hist ? hist + c * segs * 2 : nullptr, 0, 1, inner, last, a, b);
}
#endif

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
// do not all wait on one another's stores.  In-process A/B of the backward pass (zmm lanes) on an
// Intel Xeon VM (2 cores, AMX): 128x64x16x16 30 % faster, 256x512x4x4 19 % faster; 2 copies: 14 % and
// none; 8: 29 % and 8 %; 16: 22 % faster and 34 % slower (the 4x4 layer's histograms outgrow L2).
// Not yet measured on an AMD EPYC, where an earlier layout with copies per bin was 4 % slower on 4x4.
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
  // backward_planes_avx2; in L2), summed in block order.  (For 4x4 planes, groups of 16 channels walked over
  // all samples, their histograms in L1 and software prefetch, measured 1.3x slower on an Intel Xeon: runs of
  // 1 KB, one 4 KB page per sample and tensor.)  A block holds at least 16 times its histograms' size in
  // x (one copy's size): half as many histograms to zero and sum as at 8 times, and this pass 4-7 % faster
  // on 256x512x4x4 (in-process A/B on an AMD EPYC); the price is fewer blocks to share among many cores.
  // On the AVX-512 paths each channel's histogram has kChannelCopies copies (see there); each block's
  // histograms are zeroed by the task that fills them and summed in parallel over channels (the copies
  // made them 4 times larger: zeroed and summed by the calling thread alone, they took back a third of
  // the gain).
  bool wide = false;
#if defined(__AVX512F__)
  wide = std::is_same_v<scalar_t, float> && L.inner % 16 == 0 && last < 32;
#endif
  const bool side_by_side = wide && L.inner == 16 && !g_small_planes_in_order;
  const int copies = wide && (L.inner > 16 || side_by_side) ? kChannelCopies : 1;
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
                               slope, hist, L.segs, L.inner, L.channels, (o1 - o0) * L.channels, last, a, b);
          continue;
        }
      }
#endif
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t c = 0; c < L.channels; ++c) {
          const int64_t off = (o * L.channels + c) * L.inner;
          backward_run<scalar_t, acc_t>(x + off, g + off, gx ? gx + off : nullptr, slope + c * L.segs,
                                        hist ? hist + c * L.segs * 2 : nullptr, 0, 1, L.inner, last, a, b);
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
// Tables on cache-line boundaries: a 33-knot row is two 64-byte vectors, which a misaligned row
// splits over three lines (measured: a quarter of the per-channel forward pass on 4x4 planes).
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
