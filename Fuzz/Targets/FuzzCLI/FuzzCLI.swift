// libFuzzer target: the CLI's argument parsing. The input is split at newlines and NUL bytes into
// arguments for `Unet.parseAsRoot` (ArgumentParser with every command's `validate()`), and is also
// given whole to `SliceRange(argument:)`. Parsing must return a command or throw; a slice range
// that parses must be a valid 0-based inclusive range. Nothing is run.
// With FUZZ_WRITE_SEEDS=<folder> in the environment it writes its seed files there and exits.
import Foundation
import FuzzSupport
@testable import CLICore
#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCLI(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let text = String(decoding: bytes, as: UTF8.self)
    if let slices = SliceRange(argument: text) {
        precondition(slices.range.lowerBound >= 0 && slices.range.upperBound >= slices.range.lowerBound, "bad range")
        precondition(SliceRange(argument: slices.description)?.range == slices.range, "description does not parse back")
    }
    let arguments = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        .flatMap { $0.split(separator: 0, omittingEmptySubsequences: false) }
        .map { String(decoding: $0, as: UTF8.self) }
    _ = try? Unet.parseAsRoot(arguments)
    return 0
}

private let seeds: [[String]] = [
    ["train", "--epochs", "2", "--base-filters", "4", "--val-slices", "3-5", "--out", "runs/x"],
    ["train", "--data", "data/isbi", "--val-slices", "27", "--resume", "runs/x/last.safetensors", "--threads", "2"],
    ["predict", "--model", "m.safetensors", "--input", "in.tif", "--output", "out.tif", "--tile", "64"],
    ["evaluate", "--model", "m.safetensors", "--data", "d", "--val-slices", "0-29", "--tta"],
    ["evaluate", "--model", "m.safetensors", "--data", "d", "--all"],
    ["synth", "--out", "d", "--slices", "6", "--size", "64", "--seed", "3"],
    ["bench", "--base-filters", "8", "--size", "64", "--batch", "2", "--repetitions", "3", "--json"],
    ["info", "runs/x/best.safetensors"],
    ["system", "--json"],
    ["--help"],
    ["12-30"],
]

@_cdecl("LLVMFuzzerInitialize")
public func fuzzCLIInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    if let folder = requestedSeedFolder {
        for (i, seed) in seeds.enumerated() {
            _ = FileManager.default.createFile(atPath: "\(folder)/seed-\(i).args", contents: Data(seed.joined(separator: "\n").utf8))
        }
        print("FuzzCLI: wrote \(seeds.count) seeds to \(folder)")
        exit(0)
    }
    return 0
}

@_cdecl("FuzzCLI_main")
public func FuzzCLIMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzCLI)
}
