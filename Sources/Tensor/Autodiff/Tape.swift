#if canImport(Glibc)
import Glibc
#endif

/// One node of the dynamic autodiff tape.
///
/// A leaf node belongs to a tensor the user asked gradients for and accumulates them in `gradient`.
/// An interior node belongs to an op's result: it keeps its inputs' nodes and a closure that turns
/// the gradient of the result into gradients of the inputs (nil for inputs that need none). The
/// graph lives exactly as long as a tensor refers to its last node.
///
/// Threads: graphs built and walked on different threads may share leaves (a model's parameters);
/// a leaf's gradient is read, accumulated and cleared under its own lock. One graph is walked by one
/// `backward` call at a time (the walk consumes it).
public final class AutodiffNode {
    /// The op that made the node ("leaf" for leaves); shown in error messages.
    public let op: String
    let parents: [AutodiffNode?]
    var backwardFunction: ((Tensor) -> [Tensor?])?
    /// The profiler category the backward closure's time is charged to.
    let category: OpProfiler.Category
    let shape: [Int]
    let isLeaf: Bool
    /// Leaves only: the accumulated gradient, guarded by `lock`.
    private var accumulated: Tensor?
    private let lock: GradientLock?

    init(leafOfShape shape: [Int]) {
        op = "leaf"; parents = []; backwardFunction = nil; category = .elementwiseBackward; self.shape = shape
        isLeaf = true; lock = GradientLock()
    }

    init(op: String, category: OpProfiler.Category, shape: [Int], parents: [AutodiffNode?],
         backward: @escaping (Tensor) -> [Tensor?]) {
        self.op = op; self.category = category; self.parents = parents; backwardFunction = backward
        self.shape = shape; isLeaf = false; lock = nil
    }

    /// The accumulated gradient (leaves only).
    var gradient: Tensor? {
        guard let lock else { return nil }
        return lock.withLock { accumulated }
    }

    /// Adds `g` into the accumulated gradient (leaves only).
    func accumulate(_ g: Tensor) {
        lock?.withLock {
            guard var existing = accumulated else { accumulated = g; return }
            accumulated = nil  // leaves `existing` the only reference, so the add runs in place
            existing.addInPlace(g)
            accumulated = existing
        }
    }

    /// Drops the accumulated gradient.
    func clearGradient() { lock?.withLock { accumulated = nil } }

    /// Runs `body` on the accumulated gradient's values, in place, holding the lock (leaves only);
    /// nil without calling it when there is no gradient.
    func withMutableGradient<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R? {
        guard let lock else { return nil }
        return try lock.withLock { () throws -> R? in
            guard var values = accumulated else { return nil }
            accumulated = nil  // `values` the only reference: the change happens in place
            defer { accumulated = values }
            return try values.withUnsafeMutableBufferPointer(body)
        }
    }
}

/// A mutex (pthread: the module does not import Foundation).
final class GradientLock {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` holding the lock.
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Whether ops record on the tape in the current thread (see `withoutGradients`).
public enum GradientMode {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// False inside `withoutGradients` on this thread.
    public static var isEnabled: Bool { pthread_getspecific(key) == nil }

    static func setDisabledDepth(_ depth: Int) {
        pthread_setspecific(key, depth == 0 ? nil : UnsafeRawPointer(bitPattern: depth))
    }
    static var disabledDepth: Int { Int(bitPattern: pthread_getspecific(key)) }
}

/// Runs `body` with gradient recording off on this thread: ops build no tape nodes, so inference
/// keeps no intermediate tensors alive. Nests.
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    let depth = GradientMode.disabledDepth
    GradientMode.setDisabledDepth(depth + 1)
    defer { GradientMode.setDisabledDepth(depth) }
    return try body()
}

extension Tensor {
    /// True when this tensor is a tape leaf or the result of ops on one.
    public var requiresGradient: Bool { node != nil }

    /// The same values as a new tape leaf: gradients of later `backward()` calls accumulate in `gradient`.
    public func requiringGradient() -> Tensor {
        var t = self
        t.node = AutodiffNode(leafOfShape: shape)
        return t
    }

    /// The gradient accumulated in this leaf by `backward()` calls; nil before any, or for non-leaves.
    public var gradient: Tensor? { node?.gradient }

    /// Clears this leaf's accumulated gradient.
    public func zeroGradient() { node?.clearGradient() }

    /// Which of `inputs` need gradients, or nil when the op should record nothing
    /// (gradient mode off, or no input on the tape).
    @inlinable public static func gradientNeeds(_ inputs: Tensor...) -> [Bool]? {
        var any = false
        var needs = [Bool](repeating: false, count: inputs.count)
        for (i, t) in inputs.enumerated() where t.node != nil { needs[i] = true; any = true }
        return any && GradientMode.isEnabled ? needs : nil
    }

    /// Records the op that produced `self` from `inputs`. `backward` receives the gradient of
    /// `self` and returns one gradient per input, each of that input's shape (nil where not needed);
    /// `OpProfiler` charges its time to `category`. Ops call this only after `gradientNeeds`
    /// returned non-nil.
    ///
    /// ```swift
    /// y.recordOp("maxPool2d", profiledAs: .poolingBackward, inputs: [x]) { g in [scatter(g)] }
    /// ```
    public mutating func recordOp(_ op: String, profiledAs category: OpProfiler.Category, inputs: [Tensor],
                                  backward: @escaping (Tensor) -> [Tensor?]) {
        node = AutodiffNode(op: op, category: category, shape: shape, parents: inputs.map(\.node), backward: backward)
    }

    /// Back-propagates from a scalar: accumulates d(self)/d(leaf) into every leaf's `gradient`.
    public func backward() {
        precondition(count == 1, "backward(): called on a tensor of shape \(shape); pass a seed gradient for non-scalars")
        backward(seed: Tensor(repeating: 1, shape: shape))
    }

    /// Back-propagates `seed` (the gradient of some scalar with respect to `self`, same shape).
    /// Saved intermediate values are released as the walk passes them, so a graph can be walked once.
    public func backward(seed: Tensor) {
        precondition(seed.shape == shape, "backward(seed:): seed shape \(seed.shape) differs from tensor shape \(shape)")
        guard let root = node else {
            preconditionFailure("backward(): the tensor does not require gradients (no input was requiringGradient())")
        }
        withoutGradients {
            let order = AutodiffNode.topologicalOrder(from: root)
            var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed.detached]
            for node in order.reversed() {
                guard let g = pending.removeValue(forKey: ObjectIdentifier(node)) else { continue }
                if node.isLeaf {
                    node.accumulate(g)
                    continue
                }
                guard let function = node.backwardFunction else {
                    preconditionFailure("backward(): the graph through '\(node.op)' was already walked once")
                }
                node.backwardFunction = nil  // frees what the op saved for backward
                let inputGradients = OpProfiler.measure(node.category) { function(g) }
                for (parent, grad) in zip(node.parents, inputGradients) {
                    guard let parent, let grad else { continue }
                    precondition(grad.shape == parent.shape,
                                 "backward(): '\(node.op)' produced a gradient of shape \(grad.shape) for an input of shape \(parent.shape)")
                    let key = ObjectIdentifier(parent)
                    if var existing = pending.removeValue(forKey: key) {
                        existing.addInPlace(grad)
                        pending[key] = existing
                    } else {
                        pending[key] = grad
                    }
                }
            }
        }
    }
}

extension AutodiffNode {
    /// Nodes reachable from `root`, each after all of its parents (iterative DFS; no recursion limit).
    static func topologicalOrder(from root: AutodiffNode) -> [AutodiffNode] {
        var order: [AutodiffNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(AutodiffNode, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (node, next) = stack.popLast() {
            if next < node.parents.count {
                stack.append((node, next + 1))
                if let parent = node.parents[next], visited.insert(ObjectIdentifier(parent)).inserted {
                    stack.append((parent, 0))
                }
            } else {
                order.append(node)
            }
        }
        return order
    }
}
