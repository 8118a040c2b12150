// libFuzzer target: the TIFF stack reader (`ImageStack.read(path:)`, `TIFFPageReader`) on arbitrary
// bytes. Every input must give a stack or a thrown `TIFFError`; anything else (a trap, another error
// type, an ASan report, an allocation past -malloc_limit_mb) is a finding.
// With FUZZ_WRITE_SEEDS=<folder> in the environment it writes its seed files there and exits.
import Foundation
import FuzzSupport
import UNet
#if canImport(Glibc)
import Glibc
#endif

/// FUZZ_VERBOSE set: print what `ImageStack.read` made of each input (to replay seeds or findings).
private let verbose = getenv("FUZZ_VERBOSE") != nil
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
        if verbose { print("FuzzTIFF: \(stack.pages) page(s) of \(stack.width) x \(stack.height) \(stack.format)") }
        precondition(stack.pixels.count == stack.width * stack.height * stack.pages, "pixel count")
        precondition(stack.width > 0 && stack.height > 0 && stack.pages > 0, "empty stack returned")
    } catch let error as TIFFError {
        if verbose { print("FuzzTIFF: \(error)") }
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
    // BigTIFF (8-byte offsets and counts), which the writer chooses only past 3.9 GB of pixel data:
    // the same small stacks forced into that layout, so the reader's 64-bit paths start covered.
    for format in ImageStack.SampleFormat.allCases {
        for compression in [TIFFCompression.none, .lzw] {
            for pages in [1, 3] {
                let (w, h) = (6, 4)
                let writer = try TIFFPageWriter(path: "\(folder)/big-\(format.rawValue)-\(compression.rawValue)-\(pages).tif",
                                                width: w, height: h, pages: pages, format: format,
                                                compression: compression, bigTIFF: true)
                for page in 0..<pages {
                    try writer.write((0..<(w * h)).map { Float(($0 * 29 + page * 7) % 256) / (format == .float32 ? 255 : 1) })
                }
                try writer.finish()
                n += 1
            }
        }
    }
    // Layouts the writer does not produce, and the inputs of the fixed findings (docs/RELIABILITY.md).
    let oneStrip: [UInt16: [UInt32]] = [256: [4], 257: [6], 258: [8], 259: [1], 262: [1], 277: [1], 278: [6]]
    var handMade: [(String, [UInt16: [UInt32]], [UInt8])] = [
        ("minIsWhite", oneStrip.merging([262: [0]]) { $1 }, Array(0..<24)),
        ("threeStrips", oneStrip.merging([278: [2], 273: [8, 16, 24], 279: [8, 8, 8]]) { $1 }, Array(0..<24)),
        ("tiled", [256: [12], 257: [10], 258: [8], 259: [1], 262: [1], 277: [1], 322: [16], 323: [16],
                   324: [8], 325: [256]], (0..<256).map { UInt8($0) }),
        ("hugePage", oneStrip.merging([256: [32768], 257: [32768], 278: [32768]]) { $1 }, Array(repeating: 0, count: 16)),
        ("hugeDeflatePage", oneStrip.merging([256: [32768], 257: [32768], 278: [32768], 259: [8]]) { $1 },
         Array(repeating: 0, count: 16)),
        ("hugeTile", [256: [16], 257: [16], 258: [8], 259: [1], 262: [1], 277: [1], 322: [16384], 323: [16384],
                      324: [8], 325: [64]], Array(repeating: 0, count: 64)),
    ]
    handMade.append(("float", oneStrip.merging([258: [32], 339: [3]]) { $1 }, Array(repeating: 0x3F, count: 96)))
    for (name, entries, data) in handMade {
        try Data(handMadeTIFF(entries, data: data)).write(to: URL(fileURLWithPath: "\(folder)/\(name).tif"))
        n += 1
    }
    print("FuzzTIFF: wrote \(n) seeds to \(folder)")
}

/// A little-endian classic TIFF of one page: header, `data` at offset 8, then the directory. Tags
/// 258, 259, 262, 277 and 339 are SHORTs, the rest LONGs; StripOffsets/StripByteCounts (273/279)
/// default to one strip of `data`; values of more than 4 bytes follow the directory.
private func handMadeTIFF(_ entries: [UInt16: [UInt32]], data: [UInt8]) -> [UInt8] {
    var entries = entries
    if entries[322] == nil {
        if entries[273] == nil { entries[273] = [8] }
        if entries[279] == nil { entries[279] = [UInt32(data.count)] }
    }
    func le(_ v: UInt32, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    let directory = 8 + data.count
    var out: [UInt8] = [0x49, 0x49, 42, 0] + le(UInt32(directory), 4) + data
    var extra: [UInt8] = []
    let extraStart = directory + 2 + 12 * entries.count + 4
    out += le(UInt32(entries.count), 2)
    for tag in entries.keys.sorted() {
        let values = entries[tag]!
        let short = [258, 259, 262, 277, 339].contains(tag)
        let payload = values.flatMap { le($0, short ? 2 : 4) }
        out += le(UInt32(tag), 2) + le(short ? 3 : 4, 2) + le(UInt32(values.count), 4)
        if payload.count <= 4 {
            out += payload + Array(repeating: 0, count: 4 - payload.count)
        } else {
            out += le(UInt32(extraStart + extra.count), 4)
            extra += payload
        }
    }
    return out + le(0, 4) + extra
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzTIFFInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    if let folder = requestedSeedFolder {
        do { try writeSeeds(to: folder) } catch { fatalError("writing seeds: \(error)") }
        exit(0)
    }
    atexit { unlink(inputPath) }
    return 0
}

@_cdecl("FuzzTIFF_main")
public func FuzzTIFFMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzTIFF)
}
