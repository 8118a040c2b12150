import ArgumentParser
import Benchmarking
import Foundation
import NN
import UNet

/// The exit codes of `unet` (sysexits.h where one fits). Documented in README.md and `unet --help`.
enum ExitStatus: Int32, CaseIterable {
    case success = 0
    /// An unexpected failure (a bug): please report it.
    case failure = 1
    /// Bad command line: unknown flag, bad value, missing argument.
    case usage = 64
    /// Bad input data: not a TIFF, bad labels, corrupt or incompatible checkpoint.
    case dataError = 65
    /// An input file or folder does not exist.
    case noInput = 66
    /// An output file or folder cannot be written.
    case cannotCreate = 73
    /// Training diverged: the loss became NaN or infinite.
    case diverged = 75
    /// Interrupted by Ctrl-C (SIGINT) or SIGTERM; training saved a checkpoint to resume from.
    case interrupted = 130

    var meaning: String {
        switch self {
        case .success: return "success"
        case .failure: return "unexpected internal error (please report it)"
        case .usage: return "bad command line (unknown flag, invalid value)"
        case .dataError: return "bad data (not a TIFF, bad labels, unfit checkpoint)"
        case .noInput: return "an input file or folder does not exist"
        case .cannotCreate: return "an output file or folder cannot be written"
        case .diverged: return "training diverged (loss NaN or infinite)"
        case .interrupted: return "interrupted (Ctrl-C, SIGTERM); checkpoint saved"
        }
    }

    /// The table for `--help`.
    static var helpTable: String {
        "Exit codes:\n" + allCases.map { String(format: "  %3d  %@", $0.rawValue, $0.meaning) }.joined(separator: "\n")
    }
}

/// A failure the CLI reports as one line on stderr with an exit code.
struct CLIError: Error, CustomStringConvertible {
    var status: ExitStatus
    var message: String
    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }
    var description: String { message }

    static func usage(_ message: String) -> CLIError { CLIError(.usage, message) }
}

/// Maps configuration field names to the flags that set them.
let flagForField: [String: String] = [
    "baseFilters": "--base-filters", "depth": "--depth", "dropout": "--dropout",
    "epochs": "--epochs", "batchSize": "--batch-size", "tileSize": "--tile", "learningRate": "--lr",
    "weightDecay": "--weight-decay", "patience": "--patience", "previewEvery": "--preview-every",
    "validationTileSize": "--val-tile", "timeBudgetSeconds": "--time-budget",
    "batch": "--batch", "size": "--size", "runs": "--runs", "warmup": "--warmup",
    "warmupEpochs": "--warmup-epochs", "minimumLearningRate": "--min-lr", "stepEpochs": "--step-epochs",
    "gamma": "--gamma", "plateauPatience": "--plateau-patience", "emaDecay": "--ema", "folds": "--folds", "fold": "--fold", "contextSlices": "--context-slices",
    "plainEpochs": "--plain-epochs",
]

/// Turns any error into one line and an exit code: the library's errors name their file, page or field.
func classify(_ error: Error) -> (message: String, status: ExitStatus) {
    func firstLine(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? s
    }
    switch error {
    case let e as CLIError:
        return (e.message, e.status)
    case let e as UNetConfigurationError:
        return ("\(flagForField[e.field] ?? e.field) \(e.value): expected \(e.expected)", .usage)
    case let e as TrainingConfigurationError:
        return ("\(flagForField[e.field] ?? e.field) \(e.value): expected \(e.expected)", .usage)
    case let e as ModelBenchmarkError:
        return ("\(flagForField[e.field] ?? e.field) \(e.value): expected \(e.expected)", .usage)
    case let e as TIFFError:
        switch e.kind {
        case .cannotOpen:
            let missing = e.systemErrorCode == ENOENT || e.systemErrorCode == ENOTDIR
            return (firstLine(e.description), missing ? .noInput : .dataError)
        case .writeFailed: return (firstLine(e.description), .cannotCreate)
        default: return (firstLine(e.description), .dataError)
        }
    case let e as ISBIDatasetError:
        if case .invalidSplit = e { return ("--val-slices: \(e.description)", .usage) }
        return (firstLine(e.description), .dataError)
    case let e as SafeTensorsError:
        switch e.problem {
        case .cannotOpen: return (firstLine(e.description), FileManager.default.fileExists(atPath: e.path) ? .dataError : .noInput)
        case .writeFailed: return (firstLine(e.description), .cannotCreate)
        default: return ("\(firstLine(e.description)) (not a valid safetensors checkpoint)", .dataError)
        }
    case let e as CheckpointError:
        return ("\(e.path): checkpoint does not fit: \(e.problem.summary)", .dataError)
    case let e as UNetCheckpointError:
        return (e.description, .dataError)
    case let e as TrainingError:
        switch e {
        case .nonFiniteLoss: return (e.description, .diverged)
        case .unusableData: return (firstLine(e.description), .dataError)
        }
    case let e as PNGError:
        return (firstLine(e.description), .cannotCreate)
    case let e as FileWriteError:
        return (firstLine(e.description), .cannotCreate)
    case let e as CocoaError:
        let path = (e.userInfo[NSFilePathErrorKey] as? String) ?? (e.userInfo[NSURLErrorKey] as? URL)?.path ?? ""
        let prefix = path.isEmpty ? "" : "\(path): "
        if e.isFileError && e.code.rawValue >= 512 { return ("\(prefix)cannot write: \(e.localizedDescription)", .cannotCreate) }
        if e.code == .fileReadNoSuchFile { return ("\(prefix)no such file", .noInput) }
        return ("\(prefix)\(firstLine(e.localizedDescription))", .dataError)
    default:
        return ("unexpected error: \(firstLine(String(describing: error)))", .failure)
    }
}
