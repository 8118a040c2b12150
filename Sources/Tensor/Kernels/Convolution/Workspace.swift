import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The scratch memory of the convolution kernels (im2col columns, padded input bands of the tap GEMMs,
/// and GEMM results before a scatter or copy-out).
///
/// Memory is bounded and reused: a convolution splits its output pixels into blocks so that the
/// columns of all blocks in flight at once fit in `limitBytes` (im2col of 64 channels at 512^2 would
/// be 600 MB whole), and the buffers go back to a small pool after each call instead of being freed.
/// Concurrent callers (ops run from several threads) each get their own buffer.
package enum ConvolutionWorkspace {
    /// Default bound: 64 MiB.
    package static let defaultLimitBytes = 64 << 20

    /// The most bytes of scratch one convolution call uses (at least one kernel row of one output
    /// pixel is always allowed, so tiny limits still work, only slower). Changing it affects calls
    /// that start afterwards; results do not depend on it beyond float reassociation in
    /// the weight gradient.
    package static var limitBytes: Int {
        get { pool.withLock { $0.limit } }
        set {
            precondition(newValue > 0, "ConvolutionWorkspace.limitBytes must be positive, got \(newValue)")
            pool.withLock { $0.limit = newValue; $0.trim(keepingBytes: 2 * newValue) }
        }
    }

    /// Preferred size of one block's scratch: big enough that the GEMMs stay efficient, small enough
    /// that a block's columns are still in cache when the GEMM reads them (docs/PERFORMANCE.md,
    /// "Block size sweep"). The effective block is the smaller of this and the limit share.
    static let preferredBlockBytes = 4 << 20

    /// Bytes the pool currently holds (free and in use); for tests and diagnostics.
    package static var pooledBytes: Int { pool.withLock { $0.totalBytes } }

    /// Frees every buffer not in use.
    package static func releaseCachedMemory() { pool.withLock { $0.trim(keepingBytes: 0) } }

    /// Runs `body` with a buffer of at least `floats` elements (64-byte aligned, contents undefined).
    static func withBuffer<R>(floats: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = pool.withLock { $0.take(floats: max(floats, 1)) }
        defer { pool.withLock { $0.give(buffer) } }
        return try body(buffer.pointer)
    }

    /// Floats available for the scratch of all blocks in flight.
    static var limitFloats: Int { max(1, limitBytes / MemoryLayout<Float>.stride) }

    final class Buffer: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Float>
        let floats: Int
        init(floats: Int) {
            self.floats = floats
            pointer = UnsafeMutableRawPointer.allocate(byteCount: floats * MemoryLayout<Float>.stride, alignment: 64)
                .bindMemory(to: Float.self, capacity: floats)
        }
        deinit { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    struct Pool: ~Copyable {
        var limit = ConvolutionWorkspace.defaultLimitBytes
        var free: [Buffer] = []
        var totalBytes = 0

        /// The smallest free buffer that fits, else a new one (dropping free ones if the pool would
        /// grow past twice the limit).
        mutating func take(floats: Int) -> Buffer {
            var best: Int? = nil
            for (i, b) in free.enumerated() where b.floats >= floats {
                if best == nil || b.floats < free[best!].floats { best = i }
            }
            if let best { return free.remove(at: best) }
            let bytes = floats * MemoryLayout<Float>.stride
            trim(keepingBytes: max(0, 2 * limit - bytes))
            totalBytes += bytes
            return Buffer(floats: floats)
        }

        mutating func give(_ buffer: Buffer) {
            free.append(buffer)
            trim(keepingBytes: 2 * limit)
        }

        /// Drops free buffers, largest first, until the pool holds at most `keepingBytes`.
        mutating func trim(keepingBytes: Int) {
            free.sort { $0.floats < $1.floats }
            while totalBytes > keepingBytes, let last = free.popLast() {
                totalBytes -= last.floats * MemoryLayout<Float>.stride
            }
        }
    }

    static let pool = Mutex(Pool())
}
