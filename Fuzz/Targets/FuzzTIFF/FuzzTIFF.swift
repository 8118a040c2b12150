// libFuzzer target: the TIFF stack reader (`ImageStack.read(path:)`, `TIFFPageReader`) on arbitrary
// bytes. Every input must give a stack or a thrown `TIFFError`; anything else (a trap, another error
// type, an ASan report, an allocation past -malloc_limit_mb) is a finding.
// With FUZZ_WRITE_SEEDS=<folder> in the environment it writes its seed files there and exits.
import Foundation
import UNet
#if canImport(Glibc)
import Glibc
#endif

private let inputPath = NSTemporaryDirectory() + "unet-fuzz-tiff-\(getpid()).tif"

private func writeInput(_ data: UnsafePointer<UInt8>?, _ size: Int) {
    let fd = open(inputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot create \(inputPath)")
    var done = 0
    while done < size, let data {
        let n = write(fd, data + done, size - done)
        precondition(n > 0, "cannot write \(inputPath)")
        done += n
    }
    close(fd)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTIFF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    writeInput(data, size)
    do {
        let stack = try ImageStack.read(path: inputPath)
        precondition(stack.pixels.count == stack.width * stack.height * stack.pages, "pixel count")
        precondition(stack.width > 0 && stack.height > 0 && stack.pages > 0, "empty stack returned")
    } catch is TIFFError {
    } catch {
        fatalError("ImageStack.read threw \(type(of: error)), not TIFFError: \(error)")
    }
    do {
        let reader = try TIFFPageReader(path: inputPath)
        // Forward along the chain, then a jump back (TIFFSetDirectory), as streaming prediction does.
        let pages = min(reader.pages, 4)
        for page in 0..<pages { _ = try reader.readPage(page) }
        if pages > 1 { _ = try reader.readPage(0) }
    } catch is TIFFError {
    } catch {
        fatalError("TIFFPageReader threw \(type(of: error)), not TIFFError: \(error)")
    }
    return 0
}

/// Small valid stacks as the tests write them: each sample format, each compression, 1 and 3 pages.
private func writeSeeds(to folder: String) throws {
    var n = 0
    for format in ImageStack.SampleFormat.allCases {
        for compression in TIFFCompression.allCases {
            for pages in [1, 3] {
                let (w, h) = (7, 5)
                let scale: Float = format == .float32 ? 1 / 255 : 1
                let pixels = (0..<(w * h * pages)).map { Float(($0 * 37) % 256) * scale }
                let stack = ImageStack(width: w, height: h, pages: pages, pixels: pixels, format: format)
                try stack.write(path: "\(folder)/\(format.rawValue)-\(compression.rawValue)-\(pages).tif",
                                compression: compression)
                n += 1
            }
        }
    }
    print("FuzzTIFF: wrote \(n) seeds to \(folder)")
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzTIFFInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    if let variable = getenv("FUZZ_WRITE_SEEDS") {
        let folder = String(cString: variable)
        do { try writeSeeds(to: folder) } catch { fatalError("writing seeds: \(error)") }
        exit(0)
    }
    atexit { unlink(inputPath) }
    return 0
}

// SwiftPM links an executable target's entry point as `FuzzTIFF_main`; libFuzzer's driver is started
// from it (LLVMFuzzerRunDriver), since this file has no top-level code.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                             _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("FuzzTIFF_main")
public func FuzzTIFFMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return runFuzzerDriver(&argc, &argv, fuzzTIFF)
}
