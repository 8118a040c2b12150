import Foundation

/// Communication between the processes ("ranks") of one data-parallel job: what the trainer and the
/// predictor need to run as K cooperating copies, one per process.
///
/// UNet defines the seam and a single-process implementation (`SingleProcess`, the default); the
/// `MPICollective` module implements it over Open MPI, so `import UNet` never needs MPI. Every rank
/// must make the same calls in the same order (as with MPI collectives); a call waits for all ranks.
///
/// The operations work on raw buffers so that gradients are reduced in place, without copies.
public protocol Collective: AnyObject {
    /// This process's index, `0..<size`; rank 0 prints and writes.
    var rank: Int { get }
    /// The number of processes in the job.
    var size: Int { get }

    /// Replaces `buffer` on every rank by the element-wise sum over all ranks.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Replaces `buffer` on every rank by the element-wise sum over all ranks.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Starts summing `buffer` over all ranks and returns at once; the sum is in `buffer` after
    /// `wait()` on the result. The buffer must stay valid and untouched until then.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest
    /// The largest of `value` over all ranks (e.g. "any rank wants to stop").
    func allReduceMax(_ value: Int64) -> Int64
    /// Copies `buffer` of rank `root` into `buffer` on every other rank (same count everywhere).
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int)
    /// Sends `buffer` to rank `destination` (a matching `receive` must be posted there).
    func send(_ buffer: UnsafeRawBufferPointer, to destination: Int)
    /// Receives exactly `buffer.count` bytes sent by rank `source`.
    func receive(_ buffer: UnsafeMutableRawBufferPointer, from source: Int)
    /// Returns when every rank has called it.
    func barrier()
    /// Ends every process of the job at once with `exitCode` (after a failure that other ranks
    /// cannot learn of through a collective call).
    func abort(exitCode: Int32) -> Never
}

/// A started `Collective.startAllReduceSum`.
public protocol CollectiveRequest: AnyObject {
    /// Blocks until the operation has finished.
    func wait()
}

extension Collective {
    /// True on the rank that prints and writes files (rank 0).
    public var isLeader: Bool { rank == 0 }

    /// Sums `values` element-wise over all ranks, in place.
    public func allReduceSum(_ values: inout [Float]) {
        guard size > 1 else { return }
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// Sums `values` element-wise over all ranks, in place.
    public func allReduceSum(_ values: inout [Double]) {
        guard size > 1 else { return }
        values.withUnsafeMutableBufferPointer { allReduceSum($0) }
    }

    /// Rank `root`'s `values` on every rank; the arrays must have the same count on every rank.
    public func broadcast(_ values: inout [Float], from root: Int = 0) {
        guard size > 1 else { return }
        values.withUnsafeMutableBytes { broadcast($0, from: root) }
    }

    /// Rank `root`'s bytes on every rank, whatever their count elsewhere (the count is sent first).
    public func broadcast(_ bytes: inout [UInt8], from root: Int = 0) {
        guard size > 1 else { return }
        var count = Int64(bytes.count)
        withUnsafeMutableBytes(of: &count) { broadcast($0, from: root) }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(count)) }
        bytes.withUnsafeMutableBytes { broadcast($0, from: root) }
    }

    /// Rank `root`'s string on every rank.
    public func broadcast(_ text: inout String, from root: Int = 0) {
        guard size > 1 else { return }
        var bytes = Array(text.utf8)
        broadcast(&bytes, from: root)
        text = String(decoding: bytes, as: UTF8.self)
    }

    /// True on every rank when `flag` is true on any rank.
    public func any(_ flag: Bool) -> Bool {
        size > 1 ? allReduceMax(flag ? 1 : 0) != 0 : flag
    }
}

/// The default `Collective`: one process, rank 0 of 1. Every operation returns at once and leaves
/// its buffer as it is, so a trainer given it computes exactly what it computes alone.
public final class SingleProcess: Collective {
    /// The single-process collective.
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest { Done() }
    public func allReduceMax(_ value: Int64) -> Int64 { value }
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int) {
        precondition(root == 0, "SingleProcess.broadcast: root \(root) of a job of 1 process")
    }
    public func send(_ buffer: UnsafeRawBufferPointer, to destination: Int) {
        preconditionFailure("SingleProcess.send: there is no rank \(destination) in a job of 1 process")
    }
    public func receive(_ buffer: UnsafeMutableRawBufferPointer, from source: Int) {
        preconditionFailure("SingleProcess.receive: there is no rank \(source) in a job of 1 process")
    }
    public func barrier() {}
    public func abort(exitCode: Int32) -> Never { exit(exitCode) }

    final class Done: CollectiveRequest {
        func wait() {}
    }
}
