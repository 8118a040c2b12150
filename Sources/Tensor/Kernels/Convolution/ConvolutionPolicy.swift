/// The choices of the convolution kernels that stay open: how one call uses the threads, and which
/// of two equivalent algorithms runs where both apply.
///
/// Every policy gives the same results up to float reassociation. `automatic`, the default of each
/// `ConvolutionKernels` entry point (and what the ops use), chooses per shape as measured in
/// docs/PERFORMANCE.md. Other values force one path: tests pass them to check every path against
/// a direct loop, benchmarks to compare paths (`unet bench conv --parallelism`, `unet-tune`).
/// A policy is a plain value passed to each call, so concurrent calls never see each other's choice.
package struct ConvolutionPolicy: Sendable, Equatable {
    /// How one call spreads its work items (image, block of output pixels) over `Threads.count`
    /// threads.
    package enum Parallelism: String, Sendable, CaseIterable {
        /// Lanes when there are at least as many work items as threads, else `splitGemm`.
        case automatic
        /// Always lanes: items spread over up to `Threads.count` threads, each running its items one
        /// after another with single-threaded BLAS. With fewer items than threads some threads idle.
        case lanes
        /// Items one after another, each GEMM split into bands over the threads and im2col/col2im
        /// split by channel.
        case splitGemm = "split-gemm"
    }

    /// How backward-data runs for a stride-1 convolution whose padding the flipped kernel can
    /// mirror (`ConvolutionKernels.transposedGeometry`); other geometries always use column matrices.
    package enum BackwardData: Sendable, Equatable {
        /// The flipped forward where Cin > Cout or where it runs as tap GEMMs, else column matrices.
        case automatic
        /// The forward convolution of the output gradient with the flipped kernel.
        case flippedForward
        /// Column matrix `W^T . dY`, then col2im into the input gradient.
        case columns
    }

    /// The form of the weight-gradient GEMM of the im2col path.
    package enum WeightGradient: Sendable, Equatable {
        /// `transposed` for up to 32 output channels, else `plain`.
        case automatic
        /// `dW^T[K, Cout] += col[K, n] . dY^T[n, Cout]`, after transposing each block of the output gradient.
        case transposed
        /// `dW[Cout, K] += dY[Cout, n] . col[K, n]^T`.
        case plain
    }

    /// Which algorithm computes a forward convolution, a backward-data that runs as the flipped
    /// forward, and the weight gradient, where Winograd's applies (`WinogradConvolution.eligible`).
    package enum Algorithm: Sendable, Equatable {
        /// Winograd where `ConvolutionMode.current` is `.fast` and the schedule picks it for the
        /// shape (`ConvolutionKernels.winogradTile`), else the exact paths.
        case automatic
        /// Never Winograd: im2col or tap GEMMs, as chosen by the other settings.
        case exact
        /// Winograd with this tile wherever it applies and its scratch fits the workspace limit.
        case winograd(WinogradTile)
    }

    /// How a call uses the threads.
    package var parallelism: Parallelism
    /// Which backward-data algorithm runs where both apply.
    package var backwardData: BackwardData
    /// Which weight-gradient GEMM the im2col path runs.
    package var weightGradient: WeightGradient
    /// Whether convolutions that tap GEMMs suit (`TapConvolution.applies`) run as tap GEMMs; false
    /// sends every convolution through im2col.
    package var tapGemms: Bool
    /// Winograd or the exact paths, where Winograd applies.
    package var algorithm: Algorithm

    /// A policy; every choice defaults to the automatic one.
    package init(parallelism: Parallelism = .automatic, backwardData: BackwardData = .automatic,
                 weightGradient: WeightGradient = .automatic, tapGemms: Bool = true, algorithm: Algorithm = .automatic) {
        self.algorithm = algorithm
        self.parallelism = parallelism
        self.backwardData = backwardData
        self.weightGradient = weightGradient
        self.tapGemms = tapGemms
    }

    /// Every choice made per shape: what the ops use.
    package static let automatic = ConvolutionPolicy()

    /// The policy `conv2d` passes to the kernels: `automatic` unless a test or harness binds another
    /// for the duration of a call (`ConvolutionPolicy.$forOps.withValue(...) { ... }`, which also
    /// covers the backward pass run inside it). Task-local, so concurrent tests never see each
    /// other's value.
    @TaskLocal package static var forOps: ConvolutionPolicy = .automatic
}
