import Foundation
import NN
import XCTest

// Helpers of the fault-injection tests (issue 17): runs killed, folders compared, private mounts.

/// Every file under `folder` (relative path -> contents), to show that a failed command changed nothing.
func snapshot(_ folder: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let base = folder.standardizedFileURL.path
    guard let walker = FileManager.default.enumerator(atPath: base) else { return files }
    for case let relative as String in walker {
        var isDirectory: ObjCBool = false
        let path = base + "/" + relative
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            files[relative] = try Data(contentsOf: URL(fileURLWithPath: path))
        }
    }
    return files
}

/// The temporary files (`.NAME.tmp-PID-N`) of interrupted atomic writes under `folder`.
func temporaryFiles(under folder: URL) throws -> [String] {
    try snapshot(folder).keys.filter { ($0.split(separator: "/").last ?? "").contains(".tmp-") }.sorted()
}

/// The names of the tensors of two safetensors files that are not bit for bit equal (or missing
/// from one of them).
func differingTensors(_ a: URL, _ b: URL) throws -> [String] {
    let x = try SafeTensors.read(from: a.path), y = try SafeTensors.read(from: b.path)
    let names = Set(x.names).union(y.names)
    return names.filter { name in
        guard let s = x[name], let t = y[name], s.shape == t.shape else { return true }
        return s.scalars.map(\.bitPattern) != t.scalars.map(\.bitPattern)
    }.sorted()
}

/// `metrics.csv` without its `seconds` column (the one timing in it), one array per row.
func metricsWithoutSeconds(_ run: URL) throws -> [[Substring]] {
    let rows = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
    guard let column = rows.first?.firstIndex(of: "seconds") else { return rows }
    return rows.map { row in var r = row; if column < r.count { r.remove(at: column) }; return r }
}

extension StartedProcess {
    /// Waits until stdout contains `text`; false when the process ended or `timeout` passed first.
    func waitForOutput(_ text: String, timeout: Double = 300) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try stdoutText().contains(text) { return true }
            if !process.isRunning { return try stdoutText().contains(text) }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    /// SIGKILL, then the finished run (status 1009 when the signal ended it).
    func kill9() throws -> CLIRun {
        kill(process.processIdentifier, SIGKILL)
        return try finish()
    }
}

/// Runs `script` with `sh` in a private mount namespace, so that the tmpfs it mounts is seen by it and
/// its children only and disappears with it, whatever happens to the test. As root it uses
/// `unshare -m`, otherwise `unshare -rm` (a user namespace in which the user is root). `environment`
/// is added to the test's (with `UNET`, the executable). Skips the test, with the reason, when no such
/// namespace with a tmpfs can be made here (no `unshare`, or mounts not permitted).
func runInMountNamespace(_ script: String, environment: [String: String]) throws -> CLIRun {
    guard let unshare = ["/usr/bin/unshare", "/bin/unshare"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw XCTSkip("no unshare (util-linux) on this machine: the full-disk and read-only-folder checks need a private tmpfs")
    }
    let flags = getuid() == 0 ? ["-m"] : ["-r", "-m"]
    func run(_ body: String) throws -> CLIRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: unshare)
        process.arguments = flags + ["sh", "-c", body]
        var env = ProcessInfo.processInfo.environment
        env["UNET"] = try unetExecutable().path
        env["UNET_THREADS"] = env["UNET_THREADS"] ?? "2"
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes to the end before waiting, so a chatty script cannot block on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }   // written before the signal, read after
        let errData = Box(), errRead = DispatchSemaphore(value: 0)
        Thread { errData.data = err.fileHandleForReading.readDataToEndOfFile(); errRead.signal() }.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        errRead.wait()
        process.waitUntilExit()
        return CLIRun(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self))
    }
    let probe = FileManager.default.temporaryDirectory.appendingPathComponent("unet-mount-probe-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: probe) }
    let check = try run("mount -t tmpfs -o size=64k tmpfs '\(probe.path)' && touch '\(probe.path)/x'")
    guard check.status == 0 else {
        throw XCTSkip("cannot mount a tmpfs in a private mount namespace here (unshare \(flags.joined(separator: " ")): \(check.stderr.trimmingCharacters(in: .whitespacesAndNewlines))); the full-disk and read-only-folder checks need one")
    }
    return try run(script)
}

/// The result files a namespace script leaves in `folder`: `NAME.status`, `NAME.out`, `NAME.err`.
func scriptRun(_ name: String, in folder: URL) throws -> CLIRun {
    func text(_ suffix: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent("\(name).\(suffix)"), encoding: .utf8)
    }
    guard let status = Int32(try text("status").trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw FixtureError(message: "\(name).status holds no exit status")
    }
    return CLIRun(status: status, stdout: try text("out"), stderr: try text("err"))
}

/// The processes whose parent is `pid` (from /proc; Linux only).
func childProcesses(of pid: pid_t) -> [pid_t] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { pid_t($0) }.filter { processStatus($0)?.parent == pid }.sorted()
}

/// The state letter and parent of process `pid` (fields 3 and 4 of /proc/PID/stat), or nil when it
/// no longer exists.
func processStatus(_ pid: pid_t) -> (state: Character, parent: pid_t)? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count >= 2, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
    return (state, parent)
}

/// Waits until process `pid` has ended (gone, or a zombie nobody reaps); false after `timeout` seconds.
func waitForEnd(of pid: pid_t, timeout: Double) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        guard let status = processStatus(pid), status.state != "Z", status.state != "X" else { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return false
}

/// When `file` was last modified.
func modificationDate(_ file: URL) throws -> Date {
    let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
    guard let date = attributes[.modificationDate] as? Date else {
        throw FixtureError(message: "\(file.path) has no modification date")
    }
    return date
}
