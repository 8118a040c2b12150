import ArgumentParser
import Foundation
import NN
import Tensor
import UNet

/// `--threads`, shared by the commands that compute.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Threads for the whole computation (default: UNET_THREADS, else the number of cores).",
        valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw CLIError.usage("--threads \(threads): expected 1...1024")
        }
    }

    /// Sets `Threads.count` (the library's one thread setting) from `--threads`, else from the
    /// `UNET_THREADS` environment variable when it holds a count of at least 1; otherwise the
    /// library's default (the number of cores) stays.
    func apply() {
        if let threads {
            Threads.count = threads
        } else if let text = ProcessInfo.processInfo.environment["UNET_THREADS"], let n = Int(text), n >= 1 {
            Threads.count = n
        }
    }
}

/// A slice range `A-B` or a single slice `A` (0-based, inclusive).
struct SliceRange: ExpressibleByArgument, CustomStringConvertible {
    var range: ClosedRange<Int>
    init?(argument: String) {
        let parts = argument.split(separator: "-", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard parts.count == 1 || parts.count == 2, let a = Int(parts[0]), let b = Int(parts.last!),
              a >= 0, b >= a else { return nil }
        range = a...b
    }
    var description: String { range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)" }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// An absolute file URL for a command-line path.
func fileURL(_ path: String) -> URL {
    URL(fileURLWithPath: path).standardizedFileURL
}

/// Throws exit 66 unless `path` is an existing regular file (named with its flag).
func requireFile(_ path: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw CLIError(.noInput, "\(flag) \(path): no such file")
    }
    if isDirectory.boolValue { throw CLIError(.noInput, "\(flag) \(path): is a folder, expected a file") }
}

/// Throws exit 66 unless `path` is an existing folder (named with its flag).
func requireFolder(_ path: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw CLIError(.noInput, "\(flag) \(path): no such folder")
    }
    if !isDirectory.boolValue { throw CLIError(.noInput, "\(flag) \(path): is a file, expected a folder") }
}

/// Creates `folder` (and parents), or throws exit 73 naming it.
func createFolder(_ folder: URL, flag: String) throws {
    do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    } catch {
        throw CLIError(.cannotCreate, "\(flag) \(folder.path): cannot create folder (\(error.localizedDescription))")
    }
    guard FileManager.default.isWritableFile(atPath: folder.path) else {
        throw CLIError(.cannotCreate, "\(flag) \(folder.path): folder is not writable")
    }
}

/// Loads the ISBI-layout dataset in `folder`, checking the files first for clear messages.
func loadDataset(folder: URL, flag: String, validationSlices: ClosedRange<Int>?) throws -> ISBIDataset {
    try requireFolder(folder.path, flag: flag)
    for name in [ISBIDataset.volumeFileName, ISBIDataset.labelsFileName] {
        let file = folder.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: file) else {
            throw CLIError(.noInput, "\(flag) \(folder.path): no \(name) (expected the ISBI layout: train-volume.tif, train-labels.tif)")
        }
    }
    return try ISBIDataset(folder: folder, validationSlices: validationSlices, loadTest: false)
}

/// What a swift-unet checkpoint's header says (read without loading the weights).
struct CheckpointSummary {
    var path: String
    var metadata: [String: String]
    var shapes: [(name: String, shape: [Int])]
    var model: UNetConfiguration
    var training: TrainingConfiguration?
    var epoch: Int?
    var history: [EpochRecord]

    /// Reads and checks the header of `path` (given with `flag`); exit 66 when missing, 65 when it is
    /// not a swift-unet checkpoint.
    init(path: String, flag: String) throws {
        try requireFile(path, flag: flag)
        self.path = path
        let header = try SafeTensors.readHeader(from: path)
        metadata = header.metadata
        shapes = header.shapes
        guard let modelJSON = metadata[MetadataKey.model] else {
            throw CLIError(.dataError, "\(path): not a swift-unet checkpoint (no '\(MetadataKey.model)' model configuration in its metadata)")
        }
        guard let model = try? JSONDecoder().decode(UNetConfiguration.self, from: Data(modelJSON.utf8)) else {
            throw CLIError(.dataError, "\(path): unreadable model configuration in its metadata")
        }
        do { try model.validate() } catch {
            throw CLIError(.dataError, "\(path): \(error)")
        }
        self.model = model
        training = metadata[MetadataKey.training].flatMap { try? JSONDecoder().decode(TrainingConfiguration.self, from: Data($0.utf8)) }
        epoch = metadata[MetadataKey.epoch].flatMap { Int($0) }
        history = metadata[MetadataKey.history].flatMap { try? JSONDecoder().decode([EpochRecord].self, from: Data($0.utf8)) } ?? []
    }

    /// Weights in the file (optimizer state excluded).
    var parameterCount: Int {
        shapes.filter { !$0.name.hasPrefix(TrainingCheckpoint.optimizerPrefix) && !$0.name.contains("running_")
            && !$0.name.hasSuffix("num_batches_tracked") }
            .reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// Builds the model and loads the weights strictly; exit 65 when they do not fit.
    func loadModel() throws -> UNetModel {
        var rng = SeededGenerator(seed: 0)
        let model = UNetModel(configuration: self.model, generator: &rng)
        do {
            try TrainingCheckpoint.load(from: path, into: model, optimizer: nil, strict: true)
        } catch let error as CheckpointError {
            throw CLIError(.dataError, "\(path): the weights do not fit the model its metadata describes (\(self.model.summary)): \(error.problem.oneLine)")
        }
        return model
    }
}

/// Whether standard output is a terminal.
var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

/// Writes one line to stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// `h:mm:ss` or `m:ss`.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// The name to print in commands the user can copy (the path the program was started with).
var programName: String {
    let argv0 = CommandLine.arguments.first ?? "unet"
    return argv0.contains("/") ? argv0 : "unet"
}

extension CheckpointError.Problem {
    /// A one-line summary.
    var oneLine: String {
        switch self {
        case .stateMismatch(let report):
            var parts: [String] = []
            if let first = report.shapeMismatches.first {
                parts.append("\(report.shapeMismatches.count) tensor(s) of another shape, e.g. \(first)")
            }
            if let first = report.missing.first { parts.append("\(report.missing.count) missing, e.g. \(first)") }
            if let first = report.unexpected.first { parts.append("\(report.unexpected.count) unexpected, e.g. \(first)") }
            return parts.joined(separator: "; ")
        case .optimizerState(let message): return message
        case .invalidMetadata(let message): return message
        }
    }
}

/// "3-7", "5" or "0,2,9".
func describeSlices(_ indices: [Int]) -> String {
    guard let lo = indices.min(), let hi = indices.max() else { return "none" }
    if indices.count == hi - lo + 1 { return lo == hi ? "\(lo)" : "\(lo)-\(hi)" }
    return indices.map(String.init).joined(separator: ",")
}
