import Foundation

/// The raw image a bioimage.io package is tested with (`test_input.npy`), and how raw values become
/// the network's [0, 1] input: the package's preprocessing, which must be the trainer's.
///
/// Values are raw (0-255 for 8-bit data, 0-65535 for 16-bit, the file's floats otherwise), channel
/// after channel, each row-major. `normalization` is what `ImageStack.normalized()` applies to the
/// training data; `rawRange` the raw values' range, which the package states.
public struct BioImageIOTestImage: Sendable, Equatable {
    /// Raw values, `channels * height * width`.
    public var pixels: [Float]
    /// The number of channels (the model's `inputChannels`).
    public var channels: Int
    /// Height in pixels.
    public var height: Int
    /// Width in pixels.
    public var width: Int
    /// The map of raw values to the network's input.
    public var normalization: IntensityNormalization
    /// The range of raw values (e.g. 0...255 for 8-bit data).
    public var rawRange: ClosedRange<Float>
    /// Where the image comes from, for the package's documentation.
    public var origin: String

    /// Creates a test image; see the properties.
    public init(pixels: [Float], channels: Int, height: Int, width: Int, normalization: IntensityNormalization,
                rawRange: ClosedRange<Float>, origin: String) {
        self.pixels = pixels
        self.channels = channels
        self.height = height
        self.width = width
        self.normalization = normalization
        self.rawRange = rawRange
        self.origin = origin
    }

    /// The network's input: `pixels` normalized.
    public var normalizedPixels: [Float] {
        var values = pixels
        values.withUnsafeMutableBufferPointer { normalization.apply(to: $0) }
        return values
    }

    /// The range raw values of `format` have, given the normalization of their stack: the full
    /// integer range, or for floats the range the normalization maps to [0, 1].
    public static func rawRange(format: ImageStack.SampleFormat, normalization: IntensityNormalization) -> ClosedRange<Float> {
        switch format {
        case .uint8, .uint16, .uint32: return 0...format.maxValue
        case .float32:
            let span = normalization.scale > 0 ? 1 / normalization.scale : 0
            return normalization.offset...(normalization.offset + span)
        }
    }

    /// `channels` consecutive slices of the synthetic EM data (`SyntheticEM`, 8-bit), `side` x `side`.
    public static func synthetic(side: Int, channels: Int = 1) -> BioImageIOTestImage {
        let em = SyntheticEM(width: side, height: side)
        let pixels = (0..<channels).flatMap { em.slice($0).image.map(Float.init) }
        let what = channels == 1 ? "slice 0" : "slices 0-\(channels - 1)"
        return BioImageIOTestImage(pixels: pixels, channels: channels, height: side, width: side,
                                   normalization: IntensityNormalization(format: .uint8, range: nil), rawRange: 0...255,
                                   origin: "synthetic EM (\(what) of swift-unet's SyntheticEM generator, seed \(em.configuration.seed), \(side) x \(side), 8-bit)")
    }

    /// The centre `side` x `side` crop of pages `0..<channels` of the TIFF stack at `path`,
    /// normalized as the whole stack is for training (a float stack is read once for its range).
    ///
    /// - Throws: `TIFFError` when the file cannot be read; `BioImageIOExportError.invalidTestImage`
    ///   when its pages are smaller than `side`, it has fewer than `channels` pages, or a pixel of the
    ///   crop is NaN or infinite.
    public static func crop(ofStack path: String, side: Int, channels: Int = 1) throws -> BioImageIOTestImage {
        let reader = try TIFFPageReader(path: path)
        guard reader.width >= side, reader.height >= side else {
            throw BioImageIOExportError.invalidTestImage("\(path): pages of \(reader.width) x \(reader.height) are smaller than the \(side) x \(side) test image")
        }
        guard reader.pages >= channels else {
            throw BioImageIOExportError.invalidTestImage("\(path): \(reader.pages) pages, the model takes \(channels) as channels")
        }
        let normalization = try IntensityNormalization(of: reader)
        let x0 = (reader.width - side) / 2, y0 = (reader.height - side) / 2
        var pixels: [Float] = []
        pixels.reserveCapacity(channels * side * side)
        for page in 0..<channels {
            let full = try reader.readPage(page)
            for y in y0..<(y0 + side) { pixels += full[(y * reader.width + x0)..<(y * reader.width + x0 + side)] }
        }
        if let bad = pixels.firstIndex(where: { !$0.isFinite }) {
            throw BioImageIOExportError.invalidTestImage("\(path): page \(bad / (side * side)) has the value \(pixels[bad]) (NaN or infinite)")
        }
        let pages = channels == 1 ? "page 0" : "pages 0-\(channels - 1)"
        return BioImageIOTestImage(pixels: pixels, channels: channels, height: side, width: side, normalization: normalization,
                                   rawRange: rawRange(format: reader.format, normalization: normalization),
                                   origin: "the centre \(side) x \(side) crop of \(pages) of \(URL(fileURLWithPath: path).lastPathComponent) (\(reader.width) x \(reader.height), \(reader.format.rawValue)), the training data")
    }

    /// The image for a checkpoint's package: the centre crop of the first slice of the training data
    /// it records (`train-volume.tif` in `checkpoint.recordedDataFolder`) when that file is readable
    /// and its pages hold a side the package declares (`BioImageIOPackage.testImageSide(for:)`, or
    /// the largest declared side that fits), else a synthetic EM slice of the preferred side. `note`
    /// says why the synthetic image was used (nil when the training data was).
    public static func forCheckpoint(_ checkpoint: CheckpointSummary) -> (image: BioImageIOTestImage, note: String?) {
        let c = checkpoint.model
        let channels = c.inputChannels
        let preferred = BioImageIOPackage.testImageSide(for: c)
        guard let folder = checkpoint.recordedDataFolder else {
            return (synthetic(side: preferred, channels: channels), "the checkpoint records no training data folder")
        }
        let path = folder.appendingPathComponent(ISBIDataset.volumeFileName).path
        guard FileManager.default.isReadableFile(atPath: path) else {
            return (synthetic(side: preferred, channels: channels), "\(path) is not readable")
        }
        do {
            let reader = try TIFFPageReader(path: path)
            let g = BioImageIOPackage.geometry(c)
            let side = min(reader.width, reader.height)
            guard side >= g.min else {
                return (synthetic(side: preferred, channels: channels),
                        "the pages of \(path) (\(reader.width) x \(reader.height)) are smaller than the model's smallest input, \(g.min) x \(g.min)")
            }
            let fitting = min(preferred, g.min + (side - g.min) / g.step * g.step)
            return (try crop(ofStack: path, side: fitting, channels: channels), nil)
        } catch {
            return (synthetic(side: preferred, channels: channels), "\(error)")
        }
    }
}
