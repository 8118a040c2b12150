import Foundation

// What every fuzz target shares: starting libFuzzer from the target's entry point, and the seed
// request of tools/fuzz.sh.

@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                             _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// Runs libFuzzer's driver on `callback` with the process's arguments. SwiftPM links an executable
/// target's entry point as `<Target>_main`; each target defines that symbol and calls this, since the
/// targets have no top-level code (`-parse-as-library`).
public func runFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, callback)
}

/// The folder named by `FUZZ_WRITE_SEEDS`: when set, a target writes its seed files there and exits
/// (tools/fuzz.sh regenerates the seeds this way; no binary seed is committed).
public var requestedSeedFolder: String? { getenv("FUZZ_WRITE_SEEDS").map { String(cString: $0) } }
