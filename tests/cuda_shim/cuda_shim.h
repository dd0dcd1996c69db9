// Runs CUDA C kernels on the CPU, one std::thread per CUDA thread and a std::barrier per block for
// __syncthreads, so that the indexing, the histograms and the reductions of csrc/pwl_cuda.cu are
// tested on machines without a GPU (tests/test_pwl_cuda.py builds it; slow, for small tensors only).
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict

using std::max;
using std::min;

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 { float x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }

typedef void* cudaStream_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
inline int cudaGetLastError() { return 0; }

struct __nv_bfloat16 { uint16_t bits; };
inline float __bfloat162float(__nv_bfloat16 v) { uint32_t u = uint32_t(v.bits) << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline __nv_bfloat16 __float2bfloat16(float f) {
  uint32_t u; std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return {uint16_t((u >> 16) | 0x40)};
  u += 0x7fff + ((u >> 16) & 1);   // round to nearest even
  return {uint16_t(u >> 16)};
}
struct __half { _Float16 v; };
inline float __half2float(__half h) { return float(h.v); }
inline __half __float2half(float f) { return {_Float16(f)}; }

namespace shim {
inline thread_local dim3 blockIdx, threadIdx, blockDim, gridDim;
inline thread_local float* shared_memory = nullptr;
inline thread_local std::barrier<>* block_barrier = nullptr;

inline void launch(dim3 grid, dim3 block, size_t shared, const std::function<void()>& body) {
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      std::vector<float> smem(shared / sizeof(float) + 1, std::nanf(""));   // garbage-like: kernels must initialise
      std::barrier<> bar(block.x);
      std::vector<std::thread> threads;
      for (unsigned t = 0; t < block.x; ++t)
        threads.emplace_back([&, t] {
          blockIdx = dim3(bx, by); threadIdx = dim3(t); blockDim = block; gridDim = grid;
          shared_memory = smem.data(); block_barrier = &bar;
          body();
          bar.arrive_and_drop();     // a thread that returns early no longer holds the others at a barrier
        });
      for (auto& th : threads) th.join();
    }
}
}  // namespace shim

#define blockIdx shim::blockIdx
#define threadIdx shim::threadIdx
#define blockDim shim::blockDim
#define gridDim shim::gridDim
#define __syncthreads() shim::block_barrier->arrive_and_wait()
