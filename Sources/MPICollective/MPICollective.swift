import CMPI
import Foundation
import UNet

/// `Collective` over Open MPI's `MPI_COMM_WORLD`: one rank per process started by `mpirun`.
///
/// ```swift
/// let world = try MPICollective.initialize()     // once, before any other MPI use
/// defer { world.finalize() }
/// let trainer = try Trainer(..., collective: world)
/// ```
/// MPI is called only from the thread that initialised it (`MPI_THREAD_FUNNELED`); the kernels'
/// worker threads never call it. Buffers larger than MPI's 32-bit counts are sent in chunks.
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int
    private var finalized = false

    /// Chunk size of every transfer, in elements: below MPI's `Int32` count limit.
    static let maximumCount = 1 << 30

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    /// Initialises MPI (at most once per process) and joins `MPI_COMM_WORLD`.
    public static func initialize() throws -> MPICollective {
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(cmpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(cmpi_comm_world(), &size), "MPI_Comm_size")
        return MPICollective(rank: Int(rank), size: Int(size))
    }

    /// Ends MPI in this process; every rank calls it once, after its last collective call.
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        reduceInPlace(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, type: cmpi_float(),
                      stride: MemoryLayout<Float>.stride, op: cmpi_sum())
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        reduceInPlace(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, type: cmpi_double(),
                      stride: MemoryLayout<Double>.stride, op: cmpi_sum())
    }

    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest {
        let request = Request()
        var offset = 0
        while offset < buffer.count {
            let count = min(Self.maximumCount, buffer.count - offset)
            var handle = cmpi_request_null()
            Self.mustSucceed(MPI_Iallreduce(cmpi_in_place(), buffer.baseAddress! + offset, Int32(count), cmpi_float(),
                                            cmpi_sum(), cmpi_comm_world(), &handle), "MPI_Iallreduce")
            request.handles.append(handle)
            offset += count
        }
        return request
    }

    public func allReduceMax(_ value: Int64) -> Int64 {
        var value = value
        withUnsafeMutableBytes(of: &value) {
            reduceInPlace($0.baseAddress, count: 1, type: cmpi_int64(), stride: 8, op: cmpi_max())
        }
        return value
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int) {
        forEachChunk(of: buffer.count) { offset, count in
            Self.mustSucceed(MPI_Bcast(buffer.baseAddress! + offset, Int32(count), cmpi_byte(), Int32(root), cmpi_comm_world()),
                             "MPI_Bcast")
        }
    }

    public func send(_ buffer: UnsafeRawBufferPointer, to destination: Int) {
        forEachChunk(of: buffer.count) { offset, count in
            Self.mustSucceed(MPI_Send(buffer.baseAddress! + offset, Int32(count), cmpi_byte(), Int32(destination), 0,
                                      cmpi_comm_world()), "MPI_Send")
        }
    }

    public func receive(_ buffer: UnsafeMutableRawBufferPointer, from source: Int) {
        forEachChunk(of: buffer.count) { offset, count in
            Self.mustSucceed(MPI_Recv(buffer.baseAddress! + offset, Int32(count), cmpi_byte(), Int32(source), 0,
                                      cmpi_comm_world(), cmpi_status_ignore()), "MPI_Recv")
        }
    }

    public func barrier() {
        Self.mustSucceed(MPI_Barrier(cmpi_comm_world()), "MPI_Barrier")
    }

    public func abort(exitCode: Int32) -> Never {
        MPI_Abort(cmpi_comm_world(), exitCode)
        exit(exitCode)
    }

    // MARK: helpers

    private func reduceInPlace(_ base: UnsafeMutableRawPointer?, count: Int, type: MPI_Datatype, stride: Int, op: MPI_Op) {
        guard let base, count > 0 else { return }
        forEachChunk(of: count) { offset, chunk in
            Self.mustSucceed(MPI_Allreduce(cmpi_in_place(), base + offset * stride, Int32(chunk), type, op, cmpi_comm_world()),
                             "MPI_Allreduce")
        }
    }

    private func forEachChunk(of count: Int, _ body: (Int, Int) -> Void) {
        var offset = 0
        while offset < count {
            let chunk = min(Self.maximumCount, count - offset)
            body(offset, chunk)
            offset += chunk
        }
    }

    final class Request: CollectiveRequest {
        var handles: [MPI_Request?] = []
        func wait() {
            for i in handles.indices {
                MPICollective.mustSucceed(MPI_Wait(&handles[i], cmpi_status_ignore()), "MPI_Wait")
            }
            handles.removeAll()
        }
    }

    /// MPI's default error handler aborts the job before an error code comes back; should one come
    /// back anyway, the job cannot continue consistently, so every rank is ended.
    static func mustSucceed(_ code: Int32, _ call: String) {
        guard code != cmpi_success() else { return }
        FileHandle.standardError.write(Data("unet: error: \(call) failed: \(errorString(code))\n".utf8))
        MPI_Abort(cmpi_comm_world(), 1)
    }

    static func check(_ code: Int32, _ call: String) throws {
        guard code == cmpi_success() else { throw MPIError(call: call, message: errorString(code)) }
    }

    static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(cString: buffer)
    }
}

/// MPI could not be started.
public struct MPIError: Error, CustomStringConvertible {
    /// The MPI call that failed.
    public var call: String
    /// MPI's message.
    public var message: String
    public var description: String { "\(call) failed: \(message)" }
}
