import Synchronization

/// Whether 3x3 convolutions may use Winograd's algorithm, the library's one accuracy setting.
///
/// `fast` (the default) lets the convolution schedule compute stride-1 3x3 convolutions by
/// Winograd's minimal filtering for the layer shapes where it measured faster. It does fewer
/// multiplications, at the price of a little float accuracy: results differ from the direct
/// convolution by about 1e-6 (F(2x2,3x3)) to 1e-5 (F(4x4,3x3)) relative to the output's
/// magnitude, instead of about 1e-7. `exact` keeps every convolution on the im2col and tap-GEMM
/// paths, whose only rounding is the GEMMs' own summation.
///
/// The library reads no environment variable: the `unet` tool sets this from `--exact-conv` or
/// `UNET_CONV=exact`. Setting it is thread-safe and affects convolutions that start afterwards.
///
/// ```swift
/// ConvolutionMode.current = .exact
/// ```
public enum ConvolutionMode: String, Sendable, CaseIterable {
    /// Winograd where the schedule finds it faster (the default).
    case fast
    /// Only the exact (im2col and tap-GEMM) paths.
    case exact

    /// 0: fast, 1: exact.
    private static let setting = Atomic<Int>(0)

    /// The mode convolutions use (default `.fast`).
    public static var current: ConvolutionMode {
        get { setting.load(ordering: .relaxed) == 0 ? .fast : .exact }
        set { setting.store(newValue == .fast ? 0 : 1, ordering: .relaxed) }
    }
}
