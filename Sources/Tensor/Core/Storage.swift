#if canImport(Glibc)
import Glibc
#endif

/// The heap buffer behind a `Tensor`: `count` Float32 values, 64-byte aligned so SIMD loads and BLAS
/// panels never straddle cache lines. Owned by exactly one final class; `Tensor` copies it on write.
///
/// Large buffers come from and return to `StoragePool`, so a training step that allocates the
/// same activation sizes every iteration reuses warm pages instead of paying the kernel's
/// page-fault and zeroing cost for fresh `mmap` memory each time.
public final class TensorStorage {
    /// Start of the buffer. Valid for `count` elements for the lifetime of this object.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of Float32 elements.
    public let count: Int
    let byteCount: Int

    /// Allocates uninitialized storage; callers must write every element before reading.
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        byteCount = max(count, 1) * MemoryLayout<Float>.stride
        pointer = StoragePool.shared.allocate(byteCount: byteCount).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    /// Allocates storage filled with `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// A new storage holding the same values.
    public func copy() -> TensorStorage {
        let result = TensorStorage(uninitializedCount: count)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    deinit { StoragePool.shared.release(UnsafeMutableRawPointer(pointer), byteCount: byteCount) }
}

/// A cache of freed large buffers, matched by exact byte size.
///
/// Buffers below `minimumPooledBytes` go straight to malloc (it already caches small blocks).
/// At most `capacityBytes` are kept; beyond that the oldest cached buffers are freed. Thread-safe.
public final class StoragePool: @unchecked Sendable {
    /// The process-wide pool used by `TensorStorage`.
    public static let shared = StoragePool()

    /// Buffers smaller than this are not pooled.
    public let minimumPooledBytes = 256 << 10
    /// The most bytes kept in the cache (default 256 MiB; `UNET_POOL_MIB` overrides; 0 disables pooling).
    /// Measured trade-off (docs/PERFORMANCE.md): 1 GiB added ~650 MiB to the peak RSS of a base-64
    /// training step for no measurable speed; 256 MiB still keeps a few 64 MiB activations warm.
    public var capacityBytes: Int {
        get { lock(); defer { unlock() }; return _capacity }
        set { lock(); _capacity = max(0, newValue); trimLocked(); unlock() }
    }

    private var _capacity: Int
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var order: [(Int, UnsafeMutableRawPointer)] = []  // oldest first, for eviction
    private var cachedBytes = 0
    private var mutex = pthread_mutex_t()

    private init() {
        pthread_mutex_init(&mutex, nil)
        if let text = getenv("UNET_POOL_MIB").map({ String(cString: $0) }), let mib = Int(text), mib >= 0 {
            _capacity = mib << 20
        } else {
            _capacity = 256 << 20
        }
    }

    @inline(__always) private func lock() { pthread_mutex_lock(&mutex) }
    @inline(__always) private func unlock() { pthread_mutex_unlock(&mutex) }

    /// Bytes currently cached (not in use by any tensor).
    public var cachedByteCount: Int { lock(); defer { unlock() }; return cachedBytes }

    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= minimumPooledBytes {
            lock()
            if var list = free[byteCount], let p = list.popLast() {
                free[byteCount] = list.isEmpty ? nil : list
                if let i = order.firstIndex(where: { $0.1 == p }) { order.remove(at: i) }
                cachedBytes -= byteCount
                unlock()
                return p
            }
            unlock()
        }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
    }

    func release(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        guard byteCount >= minimumPooledBytes else { p.deallocate(); return }
        lock()
        guard byteCount <= _capacity else { unlock(); p.deallocate(); return }
        free[byteCount, default: []].append(p)
        order.append((byteCount, p))
        cachedBytes += byteCount
        trimLocked()
        unlock()
    }

    /// Frees every cached buffer.
    public func drain() {
        lock()
        let saved = _capacity
        _capacity = 0
        trimLocked()
        _capacity = saved
        unlock()
    }

    private func trimLocked() {
        var evicted = 0
        while cachedBytes > _capacity, evicted < order.count {
            let (size, p) = order[evicted]
            evicted += 1
            if var list = free[size], let i = list.firstIndex(of: p) {
                list.remove(at: i)
                free[size] = list.isEmpty ? nil : list
            }
            cachedBytes -= size
            p.deallocate()
        }
        order.removeFirst(evicted)
    }
}
