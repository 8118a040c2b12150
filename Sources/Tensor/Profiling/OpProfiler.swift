import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time per kind of op, for "where does a training step go" breakdowns
/// (`unet bench train --profile`).
///
/// Off by default; when off, `measure` costs one branch. It profiles the thread that enabled it
/// (the training thread) and ignores others. Time is *exclusive*: a measurement nested in another
/// is charged to the inner category only, so the rows add up to the profiled wall time.
public enum OpProfiler {
    /// One category's totals.
    public struct Row: Sendable, Equatable {
        /// Kind of work, e.g. "conv forward" or "batch norm backward".
        public var category: String
        /// Exclusive seconds spent in it.
        public var seconds: Double
        /// Number of measured calls.
        public var calls: Int
    }

    nonisolated(unsafe) private static var enabled = false
    nonisolated(unsafe) private static var owner: pthread_t?
    nonisolated(unsafe) private static var totals: [String: (Double, Int)] = [:]
    nonisolated(unsafe) private static var childTime: [Double] = []  // per open measurement: time of nested ones

    /// Turns profiling on (for the calling thread) or off.
    public static var isEnabled: Bool {
        get { enabled }
        set {
            enabled = newValue
            owner = newValue ? pthread_self() : nil
        }
    }

    /// Clears the totals.
    public static func reset() { totals = [:]; childTime = [] }

    /// The totals, largest first.
    public static func snapshot() -> [Row] {
        totals.map { Row(category: $0.key, seconds: $0.value.0, calls: $0.value.1) }.sorted { $0.seconds > $1.seconds }
    }

    /// Runs `body`, charging its exclusive wall time to `category` while profiling is on.
    @inline(__always)
    public static func measure<R>(_ category: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard enabled, let owner, pthread_equal(owner, pthread_self()) != 0 else { return try body() }
        childTime.append(0)
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let nested = childTime.removeLast()
            let name = category()
            let (seconds, calls) = totals[name] ?? (0, 0)
            totals[name] = (seconds + elapsed - nested, calls + 1)
            if !childTime.isEmpty { childTime[childTime.count - 1] += elapsed }
        }
        return try body()
    }

    /// The category for a tape node's backward pass.
    static func backwardCategory(_ op: String) -> String {
        switch op {
        case "conv2d": return "conv backward"
        case "convTranspose2d": return "transposed conv backward"
        case let s where s.hasPrefix("batchNorm"): return "batch norm backward"
        case "maxPool2d": return "pooling backward"
        case "concatenate", "slice", "pad": return "concat/crop backward"
        case "softmaxCrossEntropy", "logSoftmax", "softmax": return "loss backward"
        case "relu", "elu", "sigmoid", "tanh": return "activation backward"
        default: return "elementwise backward"
        }
    }
}
