import ArgumentParser
import Benchmarking
import Foundation

/// `unet system`: the CPU, the OpenBLAS build and kernel, and the thread settings.
struct SystemInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Show the CPU and its vector extensions, the OpenBLAS build and the kernel it runs, and the threads.",
        discussion: """
            OpenBLAS picks its kernels for the CPU at start-up unless OPENBLAS_CORETYPE forces a set. \
            When the kernels in use have narrower vectors than the CPU (an AVX2 kernel on an AVX-512 CPU), \
            matrix products run at about half speed; `unet train` and `unet bench` then say so on stderr.
            """)

    @Flag(help: "Print one JSON object (keys version, build, cpu_model, cores, cpu_vector_extensions, cpu_vector_bits, openblas_version, openblas_config, openblas_core, openblas_core_vector_bits, openblas_dynamic_arch, openblas_coretype_env, openblas_l2_size_env, threads, openblas_threads_per_call).")
    var json = false

    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        threadOptions.apply()
        let report = currentSystemReport()
        print(json ? report.json : report.text)
    }
}

/// The system report of this process (reads the environment; never changes it).
func currentSystemReport() -> SystemReport {
    SystemReport.current(environment: ProcessInfo.processInfo.environment)
}

/// The text of `unet --version`: the version, the build, and the BLAS kernel in use.
let versionText: String = {
    let report = currentSystemReport()
    return "swift-unet \(report.version) (\(report.build) build), OpenBLAS \(report.openBLASVersion) core \(report.openBLASCore); "
        + "'unet system' shows the full report"
}()

nonisolated(unsafe) private var warnedAboutBLASKernel = false

/// Prints `report.kernelWarning` on stderr the first time it is called in this process (on rank 0 of
/// an MPI job; in an ensemble, by the parent only), when the OpenBLAS kernels in use are narrower
/// than the CPU's vectors.
func warnIfBLASKernelIsNarrow(_ report: SystemReport = currentSystemReport()) {
    guard !warnedAboutBLASKernel, jobRank == 0, ensembleParent() == nil, let warning = report.kernelWarning else { return }
    warnedAboutBLASKernel = true
    printError("unet: warning: \(warning)")
}
