/// The convolution kernels over raw NCHW buffers: im2col + SGEMM with bounded, reused workspace.
/// No autodiff here; `conv2d`/`convTranspose2d` call these.
///
/// GEMMs, for one image and a block of output pixels `p0..<p1` (`n` pixels):
/// - forward:          `Y[Cout, n] = W[Cout, K] . col[K, n]`         (K = Cin*kh*kw)
/// - backward-data:    `dcol[K, n] = W^T . dY[Cout, n]`, then col2im into dX
/// - backward-weight:  `dW[Cout, K] += dY[Cout, n] . col[K, n]^T`, or for up to 32 output channels
///                     `dW^T[K, Cout] += col[K, n] . dY^T[n, Cout]` (`useTransposedWeightGradient`)
/// 1x1 stride-1 unpadded convolutions use the input planes as `col` directly. Non-overlapping ones
/// (kernel == stride, U-Net's up-convolution as a transposed conv) scatter instead of accumulating.
/// Stride-1 convolutions with moderate channel counts and wide rows skip the column matrix: one
/// GEMM per kernel tap over a zero-padded band of the input (`TapConvolution`), and their
/// backward-data runs as the forward convolution of the flipped kernel. Thin GEMMs get blocks
/// within OpenBLAS's small-matrix limit (`smallGemmPixels`).
///
/// Threads (see `Threads`): work is cut into items (image, pixel block). With at least as many items
/// as threads, each thread takes a contiguous run of items with its own slice of the workspace and
/// BLAS at one thread; otherwise items run one after another, im2col/col2im split over channels and
/// each GEMM split into bands over all threads (`Gemm.sgemm(threads:)`, never OpenBLAS's own
/// threads). `ConvolutionPolicy` can force either way, and the other choices, per call. Either way each output element is written by one thread in a fixed order, so results
/// do not depend on the thread count beyond BLAS's summation order
/// (and, for the weight gradient, the order in which per-thread partial sums are added).
package enum ConvolutionKernels {}
