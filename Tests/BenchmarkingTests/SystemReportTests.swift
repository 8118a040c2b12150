@testable import Benchmarking
import Foundation
import Tensor
import XCTest

final class SystemReportTests: XCTestCase {
    /// Two processors of an AVX-512 machine, as /proc/cpuinfo lists them (abridged).
    let zen5 = """
        processor\t: 0
        vendor_id\t: AuthenticAMD
        model name\t: AMD EPYC 9R45
        flags\t\t: fpu sse sse2 ht pni ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 aes

        processor\t: 1
        model name\t: something else
        flags\t\t: fpu sse
        """

    func testParsesTheFirstProcessorsModelAndVectorExtensions() {
        let cpu = CPUInfo(parsing: zen5)
        XCTAssertEqual(cpu.model, "AMD EPYC 9R45")
        XCTAssertEqual(cpu.vectorExtensions, ["sse", "sse2", "pni", "ssse3", "fma", "sse4_1", "sse4_2", "avx", "f16c",
                                              "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_bf16"])
        XCTAssertEqual(cpu.vectorBits, 512)
        XCTAssertEqual(CPUInfo(parsing: "model name : Intel Xeon E5\nflags : sse sse2 avx avx2 fma\n").vectorBits, 256)
        XCTAssertEqual(CPUInfo(parsing: "model name : old\nflags : sse sse2\n").vectorBits, 128)
    }

    func testUnreadableOrForeignCPUInfoGivesUnknownWithoutAWidth() {
        let empty = CPUInfo(parsing: "")
        XCTAssertEqual(empty.model, "unknown")
        XCTAssertNil(empty.vectorBits)
        XCTAssertEqual(CPUInfo(parsing: "\u{0}\u{1}:::\n:\nflags").model, "unknown")
        let arm = CPUInfo(parsing: "processor : 0\nFeatures : fp asimd evtstrm aes sve sve2\nCPU part : 0xd40\n")
        XCTAssertEqual(arm.vectorExtensions, ["asimd", "sve", "sve2"])
        XCTAssertNil(arm.vectorBits, "the x86 widths do not apply")
    }

    func testOpenBLASCoreWidthsAndVersion() {
        XCTAssertEqual(SystemReport.vectorBits(ofOpenBLASCore: "Cooperlake"), 512)
        XCTAssertEqual(SystemReport.vectorBits(ofOpenBLASCore: "SkylakeX"), 512)
        XCTAssertEqual(SystemReport.vectorBits(ofOpenBLASCore: "Haswell"), 256)
        XCTAssertEqual(SystemReport.vectorBits(ofOpenBLASCore: "Zen"), 256)
        XCTAssertEqual(SystemReport.vectorBits(ofOpenBLASCore: "Nehalem"), 128)
        XCTAssertNil(SystemReport.vectorBits(ofOpenBLASCore: "NEOVERSEN1"))
        XCTAssertEqual(SystemReport.openBLASVersion(fromConfig: "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH Haswell"), "0.3.21")
        XCTAssertEqual(SystemReport.openBLASVersion(fromConfig: ""), "unknown")
        XCTAssertEqual(SystemReport.openBLASVersion(fromConfig: "OpenBLAS"), "unknown")
    }

    func report(core: String, coreType: String? = nil, l2: String? = nil, dynamic: Bool = true) -> SystemReport {
        var report = SystemReport.current(environment: [:], cpuInfo: zen5)
        report.openBLASCore = core
        report.openBLASCoreVectorBits = SystemReport.vectorBits(ofOpenBLASCore: core)
        report.openBLASCoreType = coreType
        report.openBLASL2Size = l2
        report.openBLASDynamicArch = dynamic
        return report
    }

    func testWarnsOnlyWhenTheKernelIsNarrowerThanTheCPU() throws {
        XCTAssertNil(report(core: "Cooperlake").kernelWarning)
        XCTAssertNil(report(core: "SkylakeX", coreType: "SkylakeX").kernelWarning, "forced, but as wide as the CPU")
        XCTAssertNil(report(core: "ARMV8").kernelWarning, "unknown core: no claim")

        let forced = try XCTUnwrap(report(core: "Haswell", coreType: "Haswell", l2: "512").kernelWarning)
        XCTAssertTrue(forced.contains("Haswell") && forced.contains("AVX-512") && forced.contains("AMD EPYC 9R45"), forced)
        XCTAssertTrue(forced.contains("OPENBLAS_CORETYPE=Haswell"), forced)
        XCTAssertTrue(forced.contains("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE unet"), forced)
        XCTAssertFalse(forced.contains("\n"), "one line")
        let forcedOnly = try XCTUnwrap(report(core: "Haswell", coreType: "Haswell").kernelWarning)
        XCTAssertTrue(forcedOnly.contains("env -u OPENBLAS_CORETYPE unet"), forcedOnly)

        let fixedBuild = try XCTUnwrap(report(core: "Haswell", dynamic: false).kernelWarning)
        XCTAssertTrue(fixedBuild.contains("DYNAMIC_ARCH"), fixedBuild)
        let oldBLAS = try XCTUnwrap(report(core: "Haswell").kernelWarning)
        XCTAssertTrue(oldBLAS.contains("newer OpenBLAS"), oldBLAS)
    }

    /// The live report agrees with OpenBLAS and the thread setting, and reads only what it is given.
    func testCurrentReportDescribesThisProcess() throws {
        let report = SystemReport.current(environment: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertFalse(report.openBLASCore.isEmpty)
        XCTAssertTrue(report.openBLASConfig.contains(report.openBLASVersion), report.openBLASConfig)
        XCTAssertEqual(report.openBLASCoreType, "Haswell", "taken from the given environment")
        XCTAssertNil(SystemReport.current(environment: [:]).openBLASCoreType)
        XCTAssertEqual(report.threads, Threads.count)
        XCTAssertEqual(report.openBLASThreadsPerCall, 1, "the library keeps OpenBLAS single-threaded per call")
        XCTAssertGreaterThanOrEqual(report.cores, 1)
        XCTAssertTrue(report.text.contains("kernel:   \(report.openBLASCore)"), report.text)
        XCTAssertTrue(report.summaryLine.contains("core \(report.openBLASCore)"), report.summaryLine)
        let decoded = try JSONDecoder().decode(SystemReport.self, from: Data(report.json.utf8))
        XCTAssertEqual(decoded, report)
    }
}
