import ArgumentParser
import Foundation
import UNet

// `unet train --members K`: K models with consecutive seeds, trained side by side as K child
// processes of this executable (each an ordinary `unet train` into <out>/seed-<s>, with its share of
// the threads), then scored together as the ensemble that averages their probabilities. Separate
// processes keep each member's run exactly what `unet train --seed s --threads t` would do alone,
// and let the members use the cores without sharing a thread pool.

extension Train {
    /// Threads of the whole ensemble (`--threads`, else UNET_THREADS, else the cores), shared out.
    func threadsPerMember(_ members: Int) -> Int { max(1, Threads.count / members) }

    /// A new ensemble of `count` members.
    func trainEnsemble(members count: Int) throws {
        guard !isLaunchedByMPI else {
            throw CLIError.usage("--members \(count) starts its own processes: run it without mpirun")
        }
        threadOptions.apply()
        let firstSeed = seed ?? (recipe ?? .tutorial).configuration.seed
        guard firstSeed <= UInt64.max - UInt64(count - 1) else {
            throw CLIError.usage("--seed \(firstSeed): the members' seeds \(firstSeed) + 0...\(count - 1) overflow")
        }
        let folder = out.map(fileURL) ?? defaultRunFolder()
        if EnsembleManifest.exists(in: folder) {
            throw CLIError.usage("--out \(folder.path) already holds an ensemble; choose another --out, or continue it with --resume \(folder.path)")
        }
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent(Trainer.lastCheckpointFileName).path) {
            throw CLIError.usage("--out \(folder.path) already holds a run; choose another --out")
        }
        // Check the data and split once here, so a bad flag fails before any member starts.
        if let data { try requireFolder(fileURL(data).path, flag: "--data") }
        let split = try validationSplit()
        if let data {
            _ = try loadDataset(folder: fileURL(data), flag: "--data", validationSlices: split, contextSlices: contextSlices ?? 0)
        }
        try createFolder(folder, flag: "--out")
        // Absolute, so that a resume from another folder can start a member again.
        var dataArguments = data.map { ["--data", fileURL($0).path] } ?? []
        if data == nil { dataArguments = ["--data", try writeSyntheticData(into: folder).path] }
        let seeds = (0..<count).map { firstSeed + UInt64($0) }
        let names = seeds.map(EnsembleManifest.memberName)
        let shared = removingOptions(["--members", "--out", "--seed", "--threads", "--data"], from: trainArguments()) + dataArguments
        let arguments = zip(seeds, names).map { seed, name in
            ["train"] + shared + ["--out", folder.appendingPathComponent(name).path, "--seed", "\(seed)"]
        }
        let manifest = EnsembleManifest(members: names, seeds: seeds, trainArguments: arguments)
        try manifest.save(to: folder)
        print("Ensemble: \(count) members (seeds \(seeds.map(String.init).joined(separator: ", "))), \(threadsPerMember(count)) thread(s) each, in \(folder.path)")
        try runMembers(Array(zip(names, arguments)), threads: threadsPerMember(count), folder: folder, epochsFlag: epochs)
        try evaluateEnsemble(folder: folder, manifest: manifest)
    }

    /// Continues the ensemble in `folder`: each member resumes from its last checkpoint (one without
    /// a checkpoint starts again), up to --epochs or its recorded epochs.
    func resumeEnsemble(folder: URL) throws {
        guard !isLaunchedByMPI else {
            throw CLIError.usage("--resume \(folder.path) is an ensemble, which starts its own processes: run it without mpirun")
        }
        if out != nil { throw CLIError.usage("--out cannot be combined with --resume of an ensemble: its members stay in \(folder.path)") }
        if syncBatchNorm { throw CLIError.usage("--sync-batch-norm is for mpirun; an ensemble's members run alone") }
        threadOptions.apply()
        let manifest = try loadEnsembleManifest(folder, flag: "--resume")
        var overrides: [String] = []
        if let data { overrides += ["--data", data] }
        if let valSlices { overrides += ["--val-slices", valSlices.description] }
        var runs: [(String, [String])] = []
        for (index, member) in manifest.members.enumerated() {
            let last = folder.appendingPathComponent(member).appendingPathComponent(Trainer.lastCheckpointFileName)
            guard FileManager.default.fileExists(atPath: last.path) else {
                // No epoch finished: start the member again, as it was first started.
                let replaced = Set([data.map { _ in "--data" }, valSlices.map { _ in "--val-slices" }, epochs.map { _ in "--epochs" }].compactMap { $0 })
                let fresh = removingOptions(replaced, from: manifest.trainArguments[index])
                runs.append((member, fresh + overrides + (epochs.map { ["--epochs", "\($0)"] } ?? [])))
                continue
            }
            let checkpoint = try loadCheckpoint(last.path, flag: "--resume")
            let total = try epochs ?? checkpoint.resumableTrainingConfiguration().epochs
            if checkpoint.completedEpochs >= total {
                print("\(member): \(checkpoint.completedEpochs) of \(total) epochs already done")
                continue
            }
            runs.append((member, ["train", "--resume", last.path, "--epochs", "\(total)"] + overrides))
        }
        if runs.isEmpty {
            throw CLIError.usage("--resume \(folder.path): every member has trained its epochs; pass --epochs N with more epochs to continue")
        }
        print("Resuming the ensemble in \(folder.path): \(runs.map(\.0).joined(separator: ", ")), \(threadsPerMember(runs.count)) thread(s) each")
        try runMembers(runs, threads: threadsPerMember(runs.count), folder: folder, epochsFlag: epochs)
        try evaluateEnsemble(folder: folder, manifest: manifest)
    }

    /// The arguments of this `unet train` command, without the subcommand's name.
    func trainArguments() -> [String] {
        guard let first = invocationArguments.firstIndex(of: "train") else { return [] }
        return Array(invocationArguments[(first + 1)...])
    }

    /// Starts every member (`name`, its `unet train` arguments), relays their output line by line
    /// with the member's name in front, and waits for all. Ctrl-C or SIGTERM is passed on once to
    /// every member, which saves and stops; a second one is passed on too, and ends them at once.
    func runMembers(_ runs: [(name: String, arguments: [String])], threads: Int, folder: URL, epochsFlag: Int?) throws {
        let members = try runs.map { try MemberProcess(name: $0.name, arguments: $0.arguments + ["--threads", "\(threads)"]) }
        let interrupt = InterruptFlag()
        interrupt.install(onFirst: { sig in
            printError("\n\(sig == SIGTERM ? "SIGTERM" : "Ctrl-C"): stopping every member after its batch; each saves a checkpoint (again to quit at once)")
            for member in members { member.signal(SIGINT) }
        }, onAgain: { _ in
            for member in members { member.signal(SIGINT) }
        })
        defer { interrupt.uninstall() }
        warnIfBLASKernelIsNarrow()   // once here; the members do not repeat it
        for member in members { try member.start() }
        let statuses = members.map { $0.wait() }
        let resume = "\(programName) train --resume \(folder.path)\(epochsFlag.map { " --epochs \($0)" } ?? "")"
        if interrupt.isRaised || statuses.contains(ExitStatus.interrupted.rawValue) {
            print("Interrupted; every member saved its last checkpoint. Resume the ensemble with: \(resume)")
            throw ExitCode(ExitStatus.interrupted.rawValue)
        }
        let failed = zip(members, statuses).filter { $0.1 != 0 }
        if let (member, status) = failed.first {
            let names = failed.map { "\($0.0.name) (exit \($0.1))" }.joined(separator: ", ")
            throw CLIError(ExitStatus(rawValue: status) ?? .failure,
                           "\(names) of the ensemble in \(folder.path) failed: see the lines above marked [\(member.name)]; after a fix, \(resume)")
        }
    }

    /// Scores the ensemble of every member's best checkpoint on the members' validation slices, as
    /// `unet evaluate --model <folder>` does, and saves the scores to <folder>/evaluation.json.
    func evaluateEnsemble(folder: URL, manifest: EnsembleManifest) throws {
        let first = try loadCheckpoint(manifest.bestCheckpoints(in: folder)[0].path, flag: "--model")
        guard let data = data.map(fileURL) ?? first.recordedDataFolder else {
            throw CLIError(.dataError, "\(first.url.path) does not record its data folder: score the ensemble with `\(programName) evaluate --model \(folder.path) --data DIR`")
        }
        var arguments = ["--model", folder.path, "--data", data.path, "--threads", "\(Threads.count)",
                         "--save-json", folder.appendingPathComponent("evaluation.json").path]
        if let slices = valSlices?.range ?? first.recordedValidationSlices {
            arguments += ["--val-slices", slices.lowerBound == slices.upperBound ? "\(slices.lowerBound)" : "\(slices.lowerBound)-\(slices.upperBound)"]
        }
        print("Scoring the ensemble of \(manifest.members.count) members' best checkpoints:")
        let evaluate = try Evaluate.parse(arguments)
        try evaluate.validate()
        try evaluate.run()
        print("Next: \(programName) predict --model \(folder.path) --input STACK.tif --output PROBABILITIES.tif")
    }
}

/// `arguments` without the options `names` and their values (`--name value` or `--name=value`).
func removingOptions(_ names: Set<String>, from arguments: [String]) -> [String] {
    var kept: [String] = []
    var index = arguments.startIndex
    while index < arguments.endIndex {
        let argument = arguments[index]
        if names.contains(argument) {
            index += 2
            continue
        }
        if let equals = argument.firstIndex(of: "="), names.contains(String(argument[..<equals])) {
            index += 1
            continue
        }
        kept.append(argument)
        index += 1
    }
    return kept
}

/// One member of an ensemble: a child `unet train` whose output lines are relayed with its name.
final class MemberProcess: @unchecked Sendable {
    let name: String
    private let process = Process()
    private let output = Pipe(), errors = Pipe()
    private var relays: [Thread] = []
    private let done = DispatchGroup()

    init(name: String, arguments: [String]) throws {
        self.name = name
        process.executableURL = try currentExecutable()
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        var environment = ProcessInfo.processInfo.environment
        environment[ensembleParentVariable] = "\(getpid())"
        process.environment = environment
    }

    /// Starts the process (in its own process group, so a terminal's Ctrl-C reaches only the parent,
    /// which passes it on) and the threads that relay its output.
    func start() throws {
        try process.run()
        for (pipe, toStandardError) in [(output, false), (errors, true)] {
            done.enter()
            let handle = pipe.fileHandleForReading
            let thread = Thread { [name, done] in
                relayLines(from: handle, toStandardError: toStandardError, prefix: "[\(name)] ")
                done.leave()
            }
            thread.start()
            relays.append(thread)
        }
    }

    /// Sends `signal` to the member while it runs.
    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the member and its relayed output; its exit status (128 + n after signal n).
    func wait() -> Int32 {
        process.waitUntilExit()
        done.wait()
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }
}

private let relayLock = NSLock()

/// Copies `handle` to standard output or error line by line, each line after `prefix`, until end of file.
private func relayLines(from handle: FileHandle, toStandardError: Bool, prefix: String) {
    let stream = toStandardError ? stderr : stdout
    var pending = Data()
    func emit(_ line: Data) {
        let text = prefix + String(decoding: line, as: UTF8.self) + "\n"
        relayLock.lock()
        fputs(text, stream)
        fflush(stream)
        relayLock.unlock()
    }
    while true {
        let chunk = handle.availableData
        if chunk.isEmpty { break }
        pending.append(chunk)
        while let newline = pending.firstIndex(of: 0x0A) {
            emit(pending[pending.startIndex..<newline])
            pending.removeSubrange(pending.startIndex...newline)
        }
    }
    if !pending.isEmpty { emit(pending) }
}

/// The environment variable through which a member learns its parent's process id, so that it
/// can notice the parent's end (`kill -9`, a closed terminal) and stop with a checkpoint.
let ensembleParentVariable = "UNET_ENSEMBLE_PARENT"

/// The ensemble process that started this one as a member, if any.
func ensembleParent() -> pid_t? {
    ProcessInfo.processInfo.environment[ensembleParentVariable].flatMap { pid_t($0) }.flatMap { $0 > 1 ? $0 : nil }
}

/// This executable's file, to start copies of it.
func currentExecutable() throws -> URL {
    let link = "/proc/self/exe"
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: link) { return URL(fileURLWithPath: path) }
    if let url = Bundle.main.executableURL { return url }
    throw CLIError(.failure, "cannot find this program's executable to start the ensemble's members")
}
