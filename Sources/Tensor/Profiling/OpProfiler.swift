import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time per kind of op, for "where does a training step go" breakdowns
/// (`unet bench train --profile`).
///
/// Profiling is per thread: `isEnabled`, `reset()` and `snapshot()` act on the calling thread's
/// totals, and `measure` charges only a thread that enabled profiling (the training thread); on any
/// other thread it costs one thread-local read and a branch. Each thread owns its state, so the
/// profiler needs no lock and threads cannot race on it.
///
/// Time is *exclusive*: a measurement nested in another is charged to the inner category only, so
/// the rows add up to the profiled wall time.
public enum OpProfiler {
    /// A kind of work: one row of the profile. Ops name theirs with the constants below; code
    /// outside the tensor library may use a literal (`OpProfiler.measure("optimizer") { ... }`).
    public struct Category: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
        /// The row's label, e.g. "conv forward".
        public let name: String

        /// A category labelled `name`.
        public init(_ name: String) { self.name = name }

        /// A category labelled by the literal.
        public init(stringLiteral name: String) { self.name = name }

        /// The label.
        public var description: String { name }
    }

    /// One category's totals.
    public struct Row: Sendable, Equatable {
        /// Kind of work, e.g. "conv forward" or "batch norm backward" (`Category.name`).
        public var category: String
        /// Exclusive seconds spent in it.
        public var seconds: Double
        /// Number of measured calls.
        public var calls: Int
    }

    /// The profile of one thread.
    final class ThreadState {
        var isEnabled = false
        /// Exclusive nanoseconds and calls per category.
        var totals: [Category: (nanoseconds: UInt64, calls: Int)] = [:]
        /// Per open measurement, innermost last: the time of the measurements nested in it so far.
        var nested: [UInt64] = []
        /// Monotonic nanoseconds; tests replace it to control the time each measurement sees.
        var clock: () -> UInt64 = OpProfiler.systemClock
    }

    static let systemClock: @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // The thread's state is released when the thread exits.
        #if canImport(Glibc)
        pthread_key_create(&key) { if let state = $0 { Unmanaged<ThreadState>.fromOpaque(state).release() } }
        #else
        pthread_key_create(&key) { Unmanaged<ThreadState>.fromOpaque($0).release() }
        #endif
        return key
    }()

    /// The calling thread's state, if it has one.
    @inline(__always) static var currentState: ThreadState? {
        guard let state = pthread_getspecific(key) else { return nil }
        return Unmanaged<ThreadState>.fromOpaque(state).takeUnretainedValue()
    }

    /// The calling thread's state, created on first use.
    static var state: ThreadState {
        if let state = currentState { return state }
        let state = ThreadState()
        pthread_setspecific(key, Unmanaged.passRetained(state).toOpaque())
        return state
    }

    /// Whether `measure` records on the calling thread. Turning it on or off keeps the totals.
    public static var isEnabled: Bool {
        get { currentState?.isEnabled ?? false }
        set { state.isEnabled = newValue }
    }

    /// Clears the calling thread's totals.
    public static func reset() {
        guard let state = currentState else { return }
        state.totals = [:]
        state.nested = []
    }

    /// The calling thread's totals, largest first.
    public static func snapshot() -> [Row] {
        guard let state = currentState else { return [] }
        return state.totals.map { Row(category: $0.key.name, seconds: Double($0.value.nanoseconds) / 1e9, calls: $0.value.calls) }
            .sorted { $0.seconds > $1.seconds }
    }

    /// Runs `body`, charging its exclusive wall time to `category` while profiling is on for this thread.
    @inline(__always)
    public static func measure<R>(_ category: Category, _ body: () throws -> R) rethrows -> R {
        guard let state = currentState, state.isEnabled else { return try body() }
        return try measure(category, state, body)
    }

    static func measure<R>(_ category: Category, _ state: ThreadState, _ body: () throws -> R) rethrows -> R {
        state.nested.append(0)
        let start = state.clock()
        defer {
            let elapsed = state.clock() &- start
            let nested = state.nested.removeLast()
            let (nanoseconds, calls) = state.totals[category] ?? (0, 0)
            state.totals[category] = (nanoseconds &+ (elapsed &- min(nested, elapsed)), calls + 1)
            if !state.nested.isEmpty { state.nested[state.nested.count - 1] &+= elapsed }
        }
        return try body()
    }
}

extension OpProfiler.Category {
    /// Convolution forward (`conv2d`).
    public static let convForward: Self = "conv forward"
    /// What a convolution's backward pass spends outside its two kernels below.
    public static let convBackward: Self = "conv backward"
    /// A convolution's input gradient.
    public static let convBackwardData: Self = "conv backward-data"
    /// A convolution's weight and bias gradients.
    public static let convBackwardWeight: Self = "conv backward-weight"
    /// Transposed convolution forward (`convTranspose2d`).
    public static let transposedConvForward: Self = "transposed conv forward"
    /// Transposed convolution backward.
    public static let transposedConvBackward: Self = "transposed conv backward"
    /// Batch norm (with its fused activation) forward.
    public static let batchNormForward: Self = "batch norm forward"
    /// Batch norm (with its fused activation) backward.
    public static let batchNormBackward: Self = "batch norm backward"
    /// A standalone activation (`Tensor.activated(_:)`) forward.
    public static let activationForward: Self = "activation forward"
    /// A standalone activation backward.
    public static let activationBackward: Self = "activation backward"
    /// Pooling forward.
    public static let poolingForward: Self = "pooling forward"
    /// Pooling backward.
    public static let poolingBackward: Self = "pooling backward"
    /// Concatenation and cropping (U-Net's skip connections) forward.
    public static let concatCropForward: Self = "concat/crop forward"
    /// Concatenation, slicing and padding backward.
    public static let concatCropBackward: Self = "concat/crop backward"
    /// The loss (softmax cross-entropy) forward.
    public static let lossForward: Self = "loss forward"
    /// The loss and softmax ops backward.
    public static let lossBackward: Self = "loss backward"
    /// Dropout forward.
    public static let dropout: Self = "dropout"
    /// Other elementwise ops forward (unary math functions).
    public static let elementwiseForward: Self = "elementwise forward"
    /// Every other op's backward (arithmetic, reductions, shapes, matmul, dropout).
    public static let elementwiseBackward: Self = "elementwise backward"
}
