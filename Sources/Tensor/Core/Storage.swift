#if canImport(Glibc)
import Glibc
#endif

/// The heap buffer behind a `Tensor`: `count` Float32 values, 64-byte aligned so SIMD loads and BLAS
/// panels never straddle cache lines. Owned by exactly one final class; `Tensor` copies it on write.
///
/// Large buffers come from and return to a pool inside the library, so a training step that
/// allocates the same activation sizes every iteration reuses warm pages instead of paying the
/// kernel's page-fault and zeroing cost for fresh `mmap` memory each time.
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
/// The cache may hold whatever keeps the pooled footprint (large buffers in use plus cached) within
/// the largest in-use total seen so far plus `capacityBytes`. A training loop allocates the same
/// sizes every step, so the next step's activations reuse the warm buffers of the previous step
/// while the peak footprint stays near what the step itself needs; beyond the allowance the oldest
/// cached buffers are freed. Thread-safe.
package final class StoragePool: @unchecked Sendable {
    /// The process-wide pool used by `TensorStorage`.
    package static let shared = StoragePool()

    /// Buffers smaller than this are not pooled.
    package let minimumPooledBytes = 256 << 10

    /// The capacity the pool starts with: 256 MiB. Bounding the cache by the in-use peak removes
    /// most page faults of a training step; this floor on top of the peak matters for inference,
    /// whose in-use peak is small, and is paid for in peak RSS (docs/PERFORMANCE.md, "Peak RSS and
    /// the storage pool").
    package static let defaultCapacityBytes = 256 << 20

    /// Bytes the cache may always keep, even at the in-use peak (`defaultCapacityBytes` unless set;
    /// 0 disables pooling). For tests and measurements (`unet-tune pool`).
    package var capacityBytes: Int {
        get { lock(); defer { unlock() }; return _capacity }
        set { lock(); _capacity = max(0, newValue); trimLocked(); unlock() }
    }

    /// Bytes of pooled-size buffers currently held by tensors.
    package var inUseByteCount: Int { lock(); defer { unlock() }; return inUse }
    /// The largest `inUseByteCount` so far (reset by `drain`).
    package var peakInUseByteCount: Int { lock(); defer { unlock() }; return peakInUse }

    private var inUse = 0
    private var peakInUse = 0
    private var _capacity: Int
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var order: [(Int, UnsafeMutableRawPointer)] = []  // oldest first, for eviction
    private var cachedBytes = 0
    private var mutex = pthread_mutex_t()

    private init() {
        pthread_mutex_init(&mutex, nil)
        _capacity = Self.defaultCapacityBytes
    }

    @inline(__always) private func lock() { pthread_mutex_lock(&mutex) }
    @inline(__always) private func unlock() { pthread_mutex_unlock(&mutex) }

    /// Bytes currently cached (not in use by any tensor).
    package var cachedByteCount: Int { lock(); defer { unlock() }; return cachedBytes }

    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        guard byteCount >= minimumPooledBytes else { return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64) }
        lock()
        defer { unlock() }
        inUse += byteCount
        peakInUse = max(peakInUse, inUse)
        if var list = free[byteCount], let p = list.popLast() {
            free[byteCount] = list.isEmpty ? nil : list
            if let i = order.lastIndex(where: { $0.1 == p }) { order.remove(at: i) }
            cachedBytes -= byteCount
            return p
        }
        // A miss grows the footprint: make room in the cache first.
        trimLocked()
        return PageMemory.allocate(byteCount: byteCount)
    }

    func release(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        guard byteCount >= minimumPooledBytes else { p.deallocate(); return }
        lock()
        defer { unlock() }
        inUse -= byteCount
        guard _capacity > 0 else { PageMemory.deallocate(p, byteCount: byteCount); return }
        free[byteCount, default: []].append(p)
        order.append((byteCount, p))
        cachedBytes += byteCount
        trimLocked()
    }

    /// Frees every cached buffer and forgets the in-use peak.
    package func drain() {
        lock()
        let saved = _capacity
        _capacity = 0
        peakInUse = inUse
        trimLocked()
        _capacity = saved
        unlock()
    }

    /// The most the cache may hold now: whatever keeps in-use plus cached within the in-use peak
    /// plus the capacity.
    private var allowanceLocked: Int { _capacity == 0 ? 0 : peakInUse + _capacity - inUse }

    private func trimLocked() {
        var evicted = 0
        let allowance = allowanceLocked
        while cachedBytes > allowance, evicted < order.count {
            let (size, p) = order[evicted]
            evicted += 1
            if var list = free[size], let i = list.firstIndex(of: p) {
                list.remove(at: i)
                free[size] = list.isEmpty ? nil : list
            }
            cachedBytes -= size
            PageMemory.deallocate(p, byteCount: size)
        }
        order.removeFirst(evicted)
    }
}

/// Pages mapped straight from the kernel for the pool's buffers (>= `minimumPooledBytes`), so that
/// what the pool frees is returned at once. Through malloc, freeing a large block raises glibc's
/// mmap threshold, and later blocks come from the heap and stay resident, raising peak RSS
/// (docs/PERFORMANCE.md, "Peak RSS and the storage pool").
enum PageMemory {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = mappedSize(byteCount)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("TensorStorage: out of memory mapping \(byteCount) bytes (errno \(errno))")
        }
        return p
    }

    static func deallocate(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        munmap(p, mappedSize(byteCount))
    }

    static func mappedSize(_ byteCount: Int) -> Int { (byteCount + pageSize - 1) / pageSize * pageSize }
}
