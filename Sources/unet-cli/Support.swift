import ArgumentParser
import Foundation
import NN
import Tensor
import UNet

/// `--threads` and `--exact-conv`, shared by the commands that compute.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Threads for the whole computation (default: UNET_THREADS, else the number of cores).",
        valueName: "n"))
    var threads: Int?

    @Flag(name: .customLong("exact-conv"), help: ArgumentHelp(
        "Compute 3x3 convolutions only by the exact paths, never by Winograd's algorithm (default: UNET_CONV=exact or fast, else fast)."))
    var exactConv = false

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 {
            throw CLIError.usage("--threads \(threads): expected 1...1024")
        }
        if let text = ProcessInfo.processInfo.environment["UNET_CONV"], !text.isEmpty, ConvolutionMode(rawValue: text) == nil {
            throw CLIError.usage("UNET_CONV=\(text): expected exact or fast")
        }
    }

    /// Sets `Threads.count` (the library's one thread setting) from `--threads`, else from the
    /// `UNET_THREADS` environment variable when it holds a count of at least 1; otherwise the
    /// library's default (the number of cores) stays. Sets `ConvolutionMode.current` to exact for
    /// `--exact-conv`, else from `UNET_CONV` (`exact` or `fast`) when set.
    func apply() {
        if let threads {
            Threads.count = threads
        } else if let text = ProcessInfo.processInfo.environment["UNET_THREADS"], let n = Int(text), n >= 1 {
            Threads.count = n
        }
        if exactConv {
            ConvolutionMode.current = .exact
        } else if let text = ProcessInfo.processInfo.environment["UNET_CONV"], let mode = ConvolutionMode(rawValue: text) {
            ConvolutionMode.current = mode
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
func loadDataset(folder: URL, flag: String, validationSlices: ClosedRange<Int>?, contextSlices: Int = 0) throws -> ISBIDataset {
    try requireFolder(folder.path, flag: flag)
    for name in [ISBIDataset.volumeFileName, ISBIDataset.labelsFileName] {
        let file = folder.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: file) else {
            throw CLIError(.noInput, "\(flag) \(folder.path): no \(name) (expected the ISBI layout: train-volume.tif, train-labels.tif)")
        }
    }
    return try ISBIDataset(folder: folder, validationSlices: validationSlices, loadTest: false, contextSlices: contextSlices)
}

/// Reads the header of the checkpoint given with `flag` (exit 66 when there is no such file; the
/// library's errors when it is not a swift-unet checkpoint).
func loadCheckpoint(_ path: String, flag: String) throws -> CheckpointSummary {
    try requireFile(path, flag: flag)
    return try CheckpointSummary.load(path: path)
}

/// Reads the `ensemble.json` of the folder given with `flag` (exit 65 naming the file and the
/// problem when it cannot be used).
func loadEnsembleManifest(_ folder: URL, flag: String) throws -> EnsembleManifest {
    do {
        return try EnsembleManifest.load(from: folder)
    } catch let error as EnsembleManifestError {
        throw CLIError(.dataError, "\(flag) \(error)")
    }
}

/// True for a checkpoint trained with augmentation but without flips: such a model may have learned
/// a sub-pixel offset of the labels, which flipped and rotated inputs turn around, so `--tta` aligns
/// their predictions to the plain one before averaging.
func trainedWithoutFlips(_ checkpoint: CheckpointSummary) -> Bool {
    guard let training = checkpoint.training else { return false }
    return training.augment && !training.flips
}

/// The note `--tta` prints when it aligns the transformed predictions of `path`.
func alignedTestTimeAugmentationNote(path: String) -> String {
    "note: \(path) was trained without flips (--no-flips); --tta shifts each flipped or rotated prediction onto the plain one before averaging"
}

/// Whether standard output is a terminal.
var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

/// Writes one line to stderr. A closed stderr (a pipe whose reader ended) loses the line rather
/// than trapping, as `FileHandle.write(_:)` would.
func printError(_ line: String) {
    fputs(line + "\n", stderr)
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

/// "3-7", "5" or "0,2,9".
func describeSlices(_ indices: [Int]) -> String {
    guard let lo = indices.min(), let hi = indices.max() else { return "none" }
    if indices.count == hi - lo + 1 { return lo == hi ? "\(lo)" : "\(lo)-\(hi)" }
    return indices.map(String.init).joined(separator: ",")
}

/// Checks `--folds K --fold I` as `train` and `evaluate` take them: both or neither, K >= 2,
/// 0 <= I < K, and not with `conflicting` (a flag that also chooses the slices, when given).
func checkFoldFlags(folds: Int?, fold: Int?, conflicting: String?) throws {
    if let folds {
        guard folds >= 2 else { throw CLIError.usage("--folds \(folds): expected at least 2") }
        guard let fold else { throw CLIError.usage("--folds \(folds) needs --fold I, the block to validate on (0...\(folds - 1))") }
        guard fold >= 0 && fold < folds else { throw CLIError.usage("--fold \(fold): expected 0...\(folds - 1) (0-based, below --folds \(folds))") }
        if let conflicting { throw CLIError.usage("--folds cannot be combined with \(conflicting): the fold's block is the validation set") }
    } else if let fold {
        throw CLIError.usage("--fold \(fold) needs --folds K, the number of blocks")
    }
}
