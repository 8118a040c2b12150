import Benchmarking
import Dispatch
import Foundation
import Tensor

/// CPU ticks used by the whole machine (non-idle) and by this process, from /proc.
func cpuTicks() -> (machine: Int, mine: Int) {
    let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
    let fields = stat.split(separator: "\n").first?.split(separator: " ").dropFirst().compactMap { Int($0) } ?? []
    let busy = fields.count >= 5 ? fields.reduce(0, +) - fields[3] - fields[4] : 0
    let me = (try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8)) ?? ""
    let after = me.split(separator: ")").last?.split(separator: " ") ?? []
    let mine = after.count > 13 ? (Int(after[11]) ?? 0) + (Int(after[12]) ?? 0) : 0
    return (busy, mine)
}

/// Least wall time of `body` over runs in which other processes used under 10% of the cores
/// (after a warm-up, up to 20 attempts, stopping at 3 quiet ones; if none was quiet, the least
/// time of all, which then overstates).
func quietTime(_ body: () -> Void) -> Double {
    body()
    var quiet: [Double] = [], all: [Double] = []
    for _ in 0..<20 {
        let t0 = cpuTicks()
        let wall = wallSeconds(body)
        let t1 = cpuTicks()
        let others = Double((t1.machine - t0.machine) - (t1.mine - t0.mine)) / 100.0
        all.append(wall)
        if others < 0.1 * wall * Double(System.coreCount) { quiet.append(wall) }
        if quiet.count >= 3 { break }
    }
    return (quiet.isEmpty ? all : quiet).min()!
}

/// Least process CPU time of `body` over 5 runs after a warm-up.
func cpuTime(_ body: () -> Void) -> Double {
    func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
    body()
    var best = Double.infinity
    for _ in 0..<5 {
        let s = now()
        body()
        best = min(best, now() - s)
    }
    return best
}

/// Least wall time of each of `bodies` over `rounds` rounds after a warm-up round, interleaved
/// (one run of every body per round), so that drift in the machine's load affects all alike.
func leastInterleaved(rounds: Int, _ bodies: [() -> Void]) -> [Double] {
    var best = [Double](repeating: .infinity, count: bodies.count)
    for round in 0...max(1, rounds) {
        for (i, body) in bodies.enumerated() {
            let t = wallSeconds(body)
            if round > 0 { best[i] = min(best[i], t) }
        }
    }
    return best
}

/// Median wall time of each of `bodies` over `rounds` interleaved rounds after a warm-up round
/// (as `leastInterleaved`); on a busy machine the median is steadier than the least.
func medianInterleaved(rounds: Int, _ bodies: [() -> Void]) -> [Double] {
    var times = [[Double]](repeating: [], count: bodies.count)
    for round in 0...max(1, rounds) {
        for (i, body) in bodies.enumerated() {
            let t = wallSeconds(body)
            if round > 0 { times[i].append(t) }
        }
    }
    return times.map { median($0)! }
}

/// `count` uniform floats in [-1, 1) from `seed`: an operand whose values do not matter.
func randomStorage(_ count: Int, seed: UInt64) -> TensorStorage {
    var rng = SeededGenerator(seed: seed)
    let storage = TensorStorage(uninitializedCount: count)
    for i in 0..<count { storage.pointer[i] = Float.random(in: -1..<1, using: &rng) }
    return storage
}

/// Milliseconds with two decimals.
func milliseconds(_ seconds: Double) -> String { String(format: "%.2f", seconds * 1e3) }
