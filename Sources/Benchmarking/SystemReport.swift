import COpenBLAS
import Foundation
import Tensor

/// What the machine and its BLAS are really doing: the CPU and its vector extensions, the OpenBLAS
/// build and the kernel ("core") it runs, and the thread settings.
///
/// Speed depends on that kernel: OpenBLAS picks one per CPU at start-up, unless `OPENBLAS_CORETYPE`
/// forces one (some machines set it for other software). An AVX2 kernel on an AVX-512 CPU runs
/// SGEMM at about half the rate (docs/PERFORMANCE.md). `kernelWarning` says so.
///
/// ```swift
/// let report = SystemReport.current(environment: ProcessInfo.processInfo.environment)
/// print(report.text)
/// if let warning = report.kernelWarning { print(warning) }
/// ```
/// The report only reads: it never changes the environment or the BLAS settings.
public struct SystemReport: Codable, Sendable, Equatable {
    /// swift-unet's version.
    public var version: String
    /// "release" or "debug": how this binary was compiled.
    public var build: String
    /// The CPU's model name, as the kernel reports it ("unknown" when unreadable).
    public var cpuModel: String
    /// Logical cores this process can use.
    public var cores: Int
    /// The CPU's SIMD extensions (e.g. `sse4_2`, `avx2`, `fma`, `avx512f`), as the kernel lists them.
    public var cpuVectorExtensions: [String]
    /// The widest vectors the CPU executes.
    public var cpuVectorBits: Int?
    /// OpenBLAS's version number, e.g. "0.3.21".
    public var openBLASVersion: String
    /// `openblas_get_config()`: version, build options (DYNAMIC_ARCH, ...), core.
    public var openBLASConfig: String
    /// `openblas_get_corename()`: the kernel set OpenBLAS runs, e.g. "Haswell" or "Cooperlake".
    public var openBLASCore: String
    /// The widest vectors that kernel set uses; nil for a core this report does not know.
    public var openBLASCoreVectorBits: Int?
    /// Whether OpenBLAS was built with kernels for many CPUs, chosen at start-up (DYNAMIC_ARCH).
    public var openBLASDynamicArch: Bool
    /// `OPENBLAS_CORETYPE` when set: a kernel forced by the environment.
    public var openBLASCoreType: String?
    /// `OPENBLAS_L2_SIZE` when set: a cache size forced by the environment.
    public var openBLASL2Size: String?
    /// Threads swift-unet uses (`Threads.count`).
    public var threads: Int
    /// Threads OpenBLAS uses inside one call (swift-unet keeps it at 1 and splits work itself).
    public var openBLASThreadsPerCall: Int

    enum CodingKeys: String, CodingKey {
        case version, build, cores, threads
        case cpuModel = "cpu_model", cpuVectorExtensions = "cpu_vector_extensions", cpuVectorBits = "cpu_vector_bits"
        case openBLASVersion = "openblas_version", openBLASConfig = "openblas_config", openBLASCore = "openblas_core"
        case openBLASCoreVectorBits = "openblas_core_vector_bits", openBLASDynamicArch = "openblas_dynamic_arch"
        case openBLASCoreType = "openblas_coretype_env", openBLASL2Size = "openblas_l2_size_env"
        case openBLASThreadsPerCall = "openblas_threads_per_call"
    }

    /// swift-unet's version.
    public static let version = "0.4.0"

    /// The report for this process. `environment` is where `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE`
    /// are looked up (pass `ProcessInfo.processInfo.environment`); `cpuInfo` is the text of
    /// `/proc/cpuinfo` (read when nil).
    public static func current(environment: [String: String], cpuInfo: String? = nil) -> SystemReport {
        let info = cpuInfo ?? ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
        let cpu = CPUInfo(parsing: info)
        let config = String(cString: openblas_get_config())
        let core = BLASKernel.coreName
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        return SystemReport(
            version: version, build: build, cpuModel: cpu.model, cores: ProcessInfo.processInfo.activeProcessorCount,
            cpuVectorExtensions: cpu.vectorExtensions, cpuVectorBits: cpu.vectorBits,
            openBLASVersion: openBLASVersion(fromConfig: config), openBLASConfig: config, openBLASCore: core,
            openBLASCoreVectorBits: vectorBits(ofOpenBLASCore: core),
            openBLASDynamicArch: config.split(separator: " ").contains("DYNAMIC_ARCH"),
            openBLASCoreType: environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 },
            openBLASL2Size: environment["OPENBLAS_L2_SIZE"].flatMap { $0.isEmpty ? nil : $0 },
            threads: Threads.count, openBLASThreadsPerCall: Int(openblas_get_num_threads()))
    }

    /// True when OpenBLAS's kernels use narrower vectors than the CPU has (e.g. AVX2 on AVX-512).
    public var kernelIsNarrowerThanCPU: Bool {
        guard let cpu = cpuVectorBits, let kernel = openBLASCoreVectorBits else { return false }
        return kernel < cpu
    }

    /// One paragraph for stderr when `kernelIsNarrowerThanCPU`: which kernel runs, why, and how to let
    /// OpenBLAS choose; nil otherwise.
    public var kernelWarning: String? {
        guard kernelIsNarrowerThanCPU, let cpuBits = cpuVectorBits, let kernelBits = openBLASCoreVectorBits else { return nil }
        let running = "OpenBLAS runs its \(openBLASCore) kernels (\(Self.isaName(bits: kernelBits))) on a CPU with "
            + "\(Self.isaName(bits: cpuBits)) (\(cpuModel)), so matrix products may run at about half the speed this CPU allows"
        if let forced = openBLASCoreType {
            let variables = ["OPENBLAS_CORETYPE"] + (openBLASL2Size == nil ? [] : ["OPENBLAS_L2_SIZE"])
            return "\(running): OPENBLAS_CORETYPE=\(forced) is set in the environment. To let OpenBLAS choose, "
                + "run this command without it: env \(variables.map { "-u \($0)" }.joined(separator: " ")) unet ..."
        }
        if !openBLASDynamicArch {
            return "\(running): this OpenBLAS \(openBLASVersion) was built for \(openBLASCore) only. "
                + "An OpenBLAS built with DYNAMIC_ARCH=1 (as Debian's is) lets it choose the kernel for this CPU."
        }
        return "\(running): OpenBLAS \(openBLASVersion) has no wider kernel for this CPU; a newer OpenBLAS may have one."
    }

    /// A few lines for `unet system` and `unet --version`.
    public var text: String {
        var lines = ["swift-unet \(version) (\(build) build)"]
        lines.append("CPU:      \(cpuModel), \(cores) logical core\(cores == 1 ? "" : "s")")
        let isa = cpuVectorBits.map { "\(Self.isaName(bits: $0)), \($0)-bit vectors" } ?? "unknown width"
        lines.append("vectors:  \(isa): \(cpuVectorExtensions.isEmpty ? "none listed" : cpuVectorExtensions.joined(separator: " "))")
        lines.append("OpenBLAS: \(openBLASConfig)")
        var core = "\(openBLASCore) (\(openBLASCoreVectorBits.map { "\(Self.isaName(bits: $0)), \($0)-bit" } ?? "width unknown"))"
        core += openBLASCoreType.map { ", forced by OPENBLAS_CORETYPE=\($0)" } ?? ", chosen by OpenBLAS"
        lines.append("kernel:   \(core)")
        if let l2 = openBLASL2Size { lines.append("          OPENBLAS_L2_SIZE=\(l2) is set") }
        lines.append("threads:  \(threads) (swift-unet), \(openBLASThreadsPerCall) per OpenBLAS call")
        return lines.joined(separator: "\n")
    }

    /// One line for the head of a benchmark's output.
    public var summaryLine: String {
        var environment: [String] = []
        if let type = openBLASCoreType { environment.append("OPENBLAS_CORETYPE=\(type)") }
        if let l2 = openBLASL2Size { environment.append("OPENBLAS_L2_SIZE=\(l2)") }
        let isa = cpuVectorBits.map { " (\(Self.isaName(bits: $0)))" } ?? ""
        return "system: \(cpuModel)\(isa), OpenBLAS \(openBLASVersion) core \(openBLASCore)"
            + (environment.isEmpty ? " (chosen by OpenBLAS)" : " (\(environment.joined(separator: ", ")))")
            + ", swift-unet \(version) \(build)"
    }

    /// Pretty-printed JSON with sorted keys.
    public var json: String { jsonString(self) }

    /// The version number in an `openblas_get_config()` string ("OpenBLAS 0.3.21 DYNAMIC_ARCH ..."),
    /// or "unknown".
    static func openBLASVersion(fromConfig config: String) -> String {
        let words = config.split(separator: " ")
        guard let index = words.firstIndex(of: "OpenBLAS"), index + 1 < words.count else { return "unknown" }
        return String(words[index + 1])
    }

    /// The vector width of an OpenBLAS x86-64 core (the names of `openblas_get_corename()`); nil for
    /// other architectures and unknown names.
    public static func vectorBits(ofOpenBLASCore name: String) -> Int? {
        BLASKernel.vectorBits(ofCore: name)
    }

    /// "AVX-512", "AVX2/AVX" or "SSE" for a vector width.
    static func isaName(bits: Int) -> String {
        switch bits {
        case 512...: return "AVX-512"
        case 256: return "AVX2/AVX"
        default: return "SSE"
        }
    }
}

/// The CPU facts in `/proc/cpuinfo` that matter for speed.
struct CPUInfo: Equatable {
    var model: String
    /// SIMD extensions, in the order the kernel lists them.
    var vectorExtensions: [String]
    /// The widest x86 vectors (512 with avx512f, 256 with avx, 128 with sse2); nil when none is listed.
    var vectorBits: Int?

    /// Reads the first processor's `model name` and `flags` lines (x86) or `Features` (ARM).
    init(parsing text: String) {
        var model: String?
        var flags: [Substring] = []
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else {
                if !flags.isEmpty && model != nil { break }  // end of the first processor's block
                continue
            }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if model == nil && (key == "model name" || key == "Model" || key == "cpu model") { model = value }
            if flags.isEmpty && (key == "flags" || key == "Features") { flags = value.split(separator: " ") }
        }
        self.model = model ?? "unknown"
        let prefixes = ["sse", "ssse", "pni", "avx", "fma", "f16c", "amx", "asimd", "sve", "neon"]
        vectorExtensions = flags.map(String.init).filter { flag in prefixes.contains { flag.hasPrefix($0) } }
        let set = Set(vectorExtensions)
        vectorBits = set.contains("avx512f") ? 512 : set.contains("avx") ? 256 : set.contains("sse2") ? 128 : nil
    }
}
