// Piecewise-linear activation on a uniform knot grid: fused CUDA kernels (the GPU twin of pwl_cpu.cpp).
//
// Plain C entry points (no PyTorch headers, so nvcc builds this in seconds; lib/actfn/kernels/__init__.py loads
// it with ctypes and passes raw pointers and the current stream).
//
// Layout: x is viewed as (N, C, P): samples, channels, positions in a channel's plane, and each plane
// as Q = P / V vectors of V elements (16-byte loads where the shapes allow).  Every thread owns one
// (channel, vector position) and walks the samples of its block's chunk, U rows at a time (their loads
// in flight together), so its channel -- and with per-channel knots, its table -- is fixed.  Shared
// knots use the view (ceil(numel / (T V)), 1, T V).
//   forward:  out = left[i] + rise[i] u with i = clamp(floor(s)), u = s - i, s = a x + b.
//   backward: grad_x = grad * rise[i] / h, and the knot gradient as two weighted histograms (sums of
//             grad and of grad u per segment), each thread keeping its own in shared memory
//             (bin-major, thread-minor: no bank conflicts, no atomics).  A block sums its threads'
//             histograms per channel in a fixed order into partial[chunk][slot]; knot_grad_kernel sums
//             the chunks in a fixed order and forms the knot gradient.  No atomics anywhere, so the knot
//             gradient is bit-identical from run to run.
// The tables (left values, rises, slopes) are built in shared memory from the knot values y, (Cy, S+1)
// float32, by each block for its channels.
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace {

constexpr int U = 4;   // rows a thread loads before it computes

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <typename scalar_t> __device__ __forceinline__ scalar_t from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half(v); }

template <typename scalar_t, int V>
struct alignas(sizeof(scalar_t) * V) Vec {
  scalar_t v[V];
};

// Segment index in [0, last] and position u = s - i (outside [0, 1] off the grid); NaN reads segment 0
// (its output stays NaN through u), as in the CPU kernel and the PyTorch path.
__device__ __forceinline__ int segment(float s, float last, float* u) {
  float f = floorf(s);
  f = (f >= 0.f) ? f : 0.f;
  f = (f <= last) ? f : last;
  *u = s - f;
  return static_cast<int>(f);
}

// Where a thread sits: its channel c, its channel within the block lc, its vector position q, and the
// block's first channel c0 and number of channels nch.
struct Place {
  int64_t c, q, c0;
  int lc, nch;
  bool active;
};

__device__ __forceinline__ Place place(int64_t C, int64_t Q, int cpb, int qtiles) {
  Place p;
  const int T = blockDim.x, tid = threadIdx.x;
  if (Q >= T) {          // large planes: a block is one tile of T vector positions of one channel
    p.c0 = blockIdx.x / qtiles;
    p.c = p.c0;
    p.q = static_cast<int64_t>(blockIdx.x % qtiles) * T + tid;
    p.lc = 0;
    p.nch = 1;
    p.active = p.q < Q;
  } else {               // small planes: a block is cpb whole channels, Q threads each
    p.c0 = static_cast<int64_t>(blockIdx.x) * cpb;
    p.lc = tid / static_cast<int>(Q);
    p.c = p.c0 + p.lc;
    p.q = tid % static_cast<int>(Q);
    p.nch = static_cast<int>(min(static_cast<int64_t>(cpb), C - p.c0));
    p.active = p.lc < p.nch;
  }
  return p;
}

// This thread's rows: element (n, its channel, its position) lies at n * stride + offset for n in
// [n0, n_end), its block's chunk cut at the tensor's end (shared knots' last virtual row is partial).
struct Rows {
  int64_t stride, offset, n0, n_end;
};

__device__ __forceinline__ Rows rows_of(const Place& p, int64_t N, int64_t C, int64_t P, int V, int64_t numel,
                                        int64_t rows_per_chunk) {
  Rows r;
  r.stride = C * P;
  r.offset = p.c * P + p.q * V;
  r.n0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t inside = r.offset < numel ? (numel - r.offset + r.stride - 1) / r.stride : 0;
  r.n_end = min(min(N, r.n0 + rows_per_chunk), inside);
  return r;
}

// Knot values y_k, y_{k+1} of the w-th segment of the block's tables ([tables][S], tables = the
// block's channels, or the one shared table)
__device__ __forceinline__ const float* knot_pair(const float* y, const Place& p, int per_channel, int w, int S) {
  return y + (per_channel ? (p.c0 + w / S) * (S + 1) : 0) + w % S;
}

template <typename scalar_t, int V>
__global__ void forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out, const float* __restrict__ y,
                               int64_t N, int64_t C, int64_t P, int64_t numel, int S, int per_channel, int cpb,
                               int qtiles, int64_t rows_per_chunk, float a, float b) {
  extern __shared__ float smem[];
  const Place p = place(C, P / V, cpb, qtiles);
  const int tables = per_channel ? p.nch : 1;
  float2* tab = reinterpret_cast<float2*>(smem);     // [tables][S]: (left value, rise)
  for (int w = threadIdx.x; w < tables * S; w += blockDim.x) {
    const float* yc = knot_pair(y, p, per_channel, w, S);
    tab[w] = make_float2(yc[0], yc[1] - yc[0]);
  }
  __syncthreads();
  if (!p.active) return;
  const float2* my = tab + (per_channel ? p.lc * S : 0);
  const float last = static_cast<float>(S - 1);
  const Rows rw = rows_of(p, N, C, P, V, numel, rows_per_chunk);
  const int64_t stride = rw.stride, offset = rw.offset, n_end = rw.n_end;
  using VecT = Vec<scalar_t, V>;
  for (int64_t n = rw.n0; n < n_end; n += U) {
    VecT xs[U];
#pragma unroll
    for (int r = 0; r < U; ++r)
      if (n + r < n_end) xs[r] = *reinterpret_cast<const VecT*>(x + (n + r) * stride + offset);
#pragma unroll
    for (int r = 0; r < U; ++r) {
      if (n + r >= n_end) break;
      VecT o;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        float u;
        const int i = segment(fmaf(to_float(xs[r].v[j]), a, b), last, &u);
        const float2 lr = my[i];
        o.v[j] = from_float<scalar_t>(fmaf(lr.y, u, lr.x));
      }
      *reinterpret_cast<VecT*>(out + (n + r) * stride + offset) = o;
    }
  }
}

template <typename scalar_t, int V, bool NEED_X, bool NEED_Y>
__global__ void backward_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ x,
                                scalar_t* __restrict__ grad_x, const float* __restrict__ y, float* __restrict__ partial,
                                int64_t N, int64_t C, int64_t P, int64_t numel, int S, int per_channel, int cpb,
                                int qtiles, int64_t rows_per_chunk, int64_t slots, float a, float b, float h) {
  extern __shared__ float smem[];
  const int T = blockDim.x, tid = threadIdx.x;
  const int64_t Q = P / V;
  const Place p = place(C, Q, cpb, qtiles);
  const int tables = per_channel ? p.nch : 1;
  float* hist = smem;                                   // [2S][T]: grad sums, then grad*u sums
  float* slope = smem + (NEED_Y ? 2 * S * T : 0);       // [tables][S]: rise / h
  for (int w = tid; w < tables * S; w += T) {
    const float* yc = knot_pair(y, p, per_channel, w, S);
    slope[w] = (yc[1] - yc[0]) / h;
  }
  if (NEED_Y)
    for (int v = 0; v < 2 * S; ++v) hist[v * T + tid] = 0.f;
  __syncthreads();
  if (p.active) {
    const float* my = slope + (per_channel ? p.lc * S : 0);
    const float last = static_cast<float>(S - 1);
    const Rows rw = rows_of(p, N, C, P, V, numel, rows_per_chunk);
    const int64_t stride = rw.stride, offset = rw.offset, n_end = rw.n_end;
    using VecT = Vec<scalar_t, V>;
    for (int64_t n = rw.n0; n < n_end; n += U) {
      VecT xs[U], gs[U];
#pragma unroll
      for (int r = 0; r < U; ++r)
        if (n + r < n_end) {
          xs[r] = *reinterpret_cast<const VecT*>(x + (n + r) * stride + offset);
          gs[r] = *reinterpret_cast<const VecT*>(grad + (n + r) * stride + offset);
        }
#pragma unroll
      for (int r = 0; r < U; ++r) {
        if (n + r >= n_end) break;
        VecT o;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float g = to_float(gs[r].v[j]);
          float u;
          const int i = segment(fmaf(to_float(xs[r].v[j]), a, b), last, &u);
          if (NEED_X) o.v[j] = from_float<scalar_t>(g * my[i]);
          if (NEED_Y) {
            hist[i * T + tid] += g;
            hist[(S + i) * T + tid] += g * u;
          }
        }
        if (NEED_X) *reinterpret_cast<VecT*>(grad_x + (n + r) * stride + offset) = o;
      }
    }
  }
  if (!NEED_Y) return;
  __syncthreads();
  // per channel of the block and histogram value: the sum over that channel's threads, in a fixed
  // order (rotated by the value, so that a warp's reads fall in different banks)
  const int per = 2 * S;
  for (int w = tid; w < p.nch * per; w += T) {
    const int lc = w / per, v = w % per;
    int first, count;
    if (Q >= T) {
      first = 0;
      count = static_cast<int>(min(static_cast<int64_t>(T), Q - static_cast<int64_t>(blockIdx.x % qtiles) * T));
    } else {
      first = lc * static_cast<int>(Q);
      count = static_cast<int>(Q);
    }
    const float* row = hist + v * T + first;
    float acc = 0.f;
    for (int k = 0, t = v % count; k < count; ++k, t = (t + 1 == count) ? 0 : t + 1) acc += row[t];
    const int64_t slot = (Q >= T) ? static_cast<int64_t>(blockIdx.x) : p.c0 + lc;
    partial[(static_cast<int64_t>(blockIdx.y) * slots + slot) * per + v] = acc;
  }
}

// One block per knot table: sum the partial histograms over chunks (and a channel's position tiles)
// in a fixed order -- `lanes` interleaved partial sums per value, then those in order -- and form
// grad_y[k] = (sum g)_k - (sum g u)_k + (sum g u)_{k-1}.
__global__ void knot_grad_kernel(const float* __restrict__ partial, float* __restrict__ grad_y, int64_t chunks,
                                 int64_t slots, int qtiles, int S) {
  extern __shared__ float sums[];                       // [lanes][2S], then [2S]
  const int per = 2 * S, lanes = max(1, static_cast<int>(blockDim.x) / per);
  const int64_t table = blockIdx.x, terms = chunks * qtiles;
  for (int w = threadIdx.x; w < lanes * per; w += blockDim.x) {
    const int lane = w / per, v = w % per;
    float acc = 0.f;
    for (int64_t k = lane; k < terms; k += lanes)
      acc += partial[((k / qtiles) * slots + table * qtiles + k % qtiles) * per + v];
    sums[w] = acc;
  }
  __syncthreads();
  float* total = sums + lanes * per;
  for (int v = threadIdx.x; v < per; v += blockDim.x) {
    float acc = 0.f;
    for (int lane = 0; lane < lanes; ++lane) acc += sums[lane * per + v];
    total[v] = acc;
  }
  __syncthreads();
  for (int k = threadIdx.x; k <= S; k += blockDim.x) {
    float gy = 0.f;
    if (k < S) gy += total[k] - total[S + k];
    if (k >= 1) gy += total[S + k - 1];
    grad_y[table * (S + 1) + k] = gy;
  }
}

template <typename scalar_t, int V>
int launch_forward(const void* x, void* out, const float* y, int64_t N, int64_t C, int64_t P, int64_t numel, int S,
                   int per_channel, int threads, int cpb, int qtiles, int64_t blocks_x, int64_t chunks,
                   int64_t rows_per_chunk, float a, float b, cudaStream_t stream) {
  const int tables = per_channel ? ((P / V >= threads) ? 1 : cpb) : 1;
  const size_t shared = static_cast<size_t>(tables) * S * sizeof(float2);
  forward_kernel<scalar_t, V><<<dim3(static_cast<unsigned>(blocks_x), static_cast<unsigned>(chunks)), threads, shared, stream>>>(
      static_cast<const scalar_t*>(x), static_cast<scalar_t*>(out), y, N, C, P, numel, S, per_channel, cpb, qtiles,
      rows_per_chunk, a, b);
  return static_cast<int>(cudaGetLastError());
}

template <typename scalar_t, int V, bool NX, bool NY>
int launch_backward_t(const void* grad, const void* x, void* grad_x, const float* y, float* partial, int64_t N,
                      int64_t C, int64_t P, int64_t numel, int S, int per_channel, int threads, int cpb, int qtiles,
                      int64_t blocks_x, int64_t chunks, int64_t rows_per_chunk, int64_t slots, float a, float b, float h,
                      cudaStream_t stream) {
  const int tables = per_channel ? ((P / V >= threads) ? 1 : cpb) : 1;
  const size_t shared = (static_cast<size_t>(NY ? 2 * S * threads : 0) + static_cast<size_t>(tables) * S) * sizeof(float);
  backward_kernel<scalar_t, V, NX, NY><<<dim3(static_cast<unsigned>(blocks_x), static_cast<unsigned>(chunks)), threads, shared, stream>>>(
      static_cast<const scalar_t*>(grad), static_cast<const scalar_t*>(x), static_cast<scalar_t*>(grad_x), y, partial, N, C,
      P, numel, S, per_channel, cpb, qtiles, rows_per_chunk, slots, a, b, h);
  return static_cast<int>(cudaGetLastError());
}

template <typename scalar_t, int V>
int launch_backward(const void* grad, const void* x, void* grad_x, const float* y, float* partial, int64_t N,
                    int64_t C, int64_t P, int64_t numel, int S, int per_channel, int threads, int cpb, int qtiles,
                    int64_t blocks_x, int64_t chunks, int64_t rows_per_chunk, int64_t slots, float a, float b, float h,
                    int need_x, int need_y, cudaStream_t stream) {
#define ACTFN_BWD(NX, NY)                                                                                             \
  return launch_backward_t<scalar_t, V, NX, NY>(grad, x, grad_x, y, partial, N, C, P, numel, S, per_channel, threads, \
                                                cpb, qtiles, blocks_x, chunks, rows_per_chunk, slots, a, b, h, stream)
  if (need_x && need_y) ACTFN_BWD(true, true);
  if (need_x) ACTFN_BWD(true, false);
  ACTFN_BWD(false, true);
#undef ACTFN_BWD
}

}  // namespace

// dtype: 0 float32, 1 bfloat16, 2 float16; vec: elements per load (1, 4, or 8 for 16-bit types).
// Return: a cudaError_t (0 = success).
#define ACTFN_DISPATCH(CALL)                                          \
  switch (dtype * 16 + vec) {                                         \
    case 0 * 16 + 1: return CALL(float, 1);                           \
    case 0 * 16 + 4: return CALL(float, 4);                           \
    case 1 * 16 + 1: return CALL(__nv_bfloat16, 1);                   \
    case 1 * 16 + 4: return CALL(__nv_bfloat16, 4);                   \
    case 1 * 16 + 8: return CALL(__nv_bfloat16, 8);                   \
    case 2 * 16 + 1: return CALL(__half, 1);                          \
    case 2 * 16 + 4: return CALL(__half, 4);                          \
    case 2 * 16 + 8: return CALL(__half, 8);                          \
  }                                                                   \
  return static_cast<int>(cudaErrorInvalidValue);

extern "C" int actfn_pwl_forward(int dtype, int vec, const void* x, void* out, const float* y, int64_t N, int64_t C,
                                 int64_t P, int64_t numel, int S, int per_channel, int threads, int cpb, int qtiles,
                                 int64_t blocks_x, int64_t chunks, int64_t rows_per_chunk, float a, float b,
                                 void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
#define ACTFN_FWD(T, VV) launch_forward<T, VV>(x, out, y, N, C, P, numel, S, per_channel, threads, cpb, qtiles, \
                                                blocks_x, chunks, rows_per_chunk, a, b, s)
  ACTFN_DISPATCH(ACTFN_FWD)
#undef ACTFN_FWD
}

extern "C" int actfn_pwl_backward(int dtype, int vec, const void* grad, const void* x, void* grad_x, const float* y,
                                  float* partial, int64_t N, int64_t C, int64_t P, int64_t numel, int S,
                                  int per_channel, int threads, int cpb, int qtiles, int64_t blocks_x, int64_t chunks,
                                  int64_t rows_per_chunk, int64_t slots, float a, float b, float h, int need_x,
                                  int need_y, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
#define ACTFN_BWD_CALL(T, VV) launch_backward<T, VV>(grad, x, grad_x, y, partial, N, C, P, numel, S, per_channel, threads, \
                                                      cpb, qtiles, blocks_x, chunks, rows_per_chunk, slots, a, b, h,   \
                                                      need_x, need_y, s)
  ACTFN_DISPATCH(ACTFN_BWD_CALL)
#undef ACTFN_BWD_CALL
}

extern "C" int actfn_pwl_knot_grad(const float* partial, float* grad_y, int64_t tables, int64_t chunks, int64_t slots,
                                   int qtiles, int S, void* stream) {
  const int threads = 256, per = 2 * S, lanes = threads / per > 1 ? threads / per : 1;
  knot_grad_kernel<<<static_cast<unsigned>(tables), threads, (lanes + 1) * per * sizeof(float),
                     static_cast<cudaStream_t>(stream)>>>(partial, grad_y, chunks, slots, qtiles, S);
  return static_cast<int>(cudaGetLastError());
}
