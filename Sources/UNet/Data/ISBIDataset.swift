import Foundation
import Tensor

/// One slice of an EM stack: a grayscale image in [0, 1] and, for training slices, its membrane labels.
///
/// Both arrays are row-major `height x width`. Label classes: `ISBIDataset.membraneClass` (0) and
/// `ISBIDataset.cellClass` (1), i.e. the file's 0 and 255.
public struct EMSlice: Sendable, Equatable {
    /// The slice's page index in its stack.
    public var index: Int
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// Pixel intensities in [0, 1], row-major (`width * height` values).
    public var image: [Float]
    /// Class per pixel (0 membrane, 1 cell), row-major; `nil` for an unlabeled (test) slice.
    public var label: [UInt8]?
    /// With 2.5D context (`SliceContext`): the images of slices `index - N ... index + N` of the
    /// stack, mirrored at its ends, this slice's own at the centre; empty without context.
    public var contextImages: [[Float]] = []

    /// Creates a slice; `image` (and `label`, when given) must hold `width * height` values.
    public init(index: Int, width: Int, height: Int, image: [Float], label: [UInt8]?) {
        precondition(image.count == width * height, "EMSlice: image has \(image.count) values, expected \(width * height)")
        precondition(label.map { $0.count == width * height } ?? true, "EMSlice: label size does not match the image")
        self.index = index
        self.width = width
        self.height = height
        self.image = image
        self.label = label
    }

    /// The network's input planes: `contextImages`, or the image alone without context.
    public var inputPlanes: [[Float]] { contextImages.isEmpty ? [image] : contextImages }

    /// The labels as Float class indices (0 or 1), for loss functions; `nil` when unlabeled.
    public var labelClasses: [Float]? { label?.map { Float($0) } }

    /// The image as a tensor `[1, 1, H, W]`.
    public var imageTensor: Tensor { Tensor(shape: [1, 1, height, width], scalars: image) }
}

extension Collection where Element == EMSlice {
    /// The images stacked as a tensor `[N, 1, H, W]` (all slices must have the same size).
    public func imageTensor() -> Tensor {
        guard let first = self.first else { return Tensor(shape: [0, 1, 0, 0], scalars: []) }
        var scalars = [Float]()
        scalars.reserveCapacity(count * first.width * first.height)
        for s in self {
            precondition(s.width == first.width && s.height == first.height,
                         "imageTensor: slice \(s.index) is \(s.width) x \(s.height), slice \(first.index) is \(first.width) x \(first.height)")
            scalars += s.image
        }
        return Tensor(shape: [count, 1, first.height, first.width], scalars: scalars)
    }

    /// The labels stacked as Float class indices `[N, H, W]` (all slices must be labeled and equally sized).
    public func labelTensor() -> Tensor {
        guard let first = self.first else { return Tensor(shape: [0, 0, 0], scalars: []) }
        var scalars = [Float]()
        scalars.reserveCapacity(count * first.width * first.height)
        for s in self {
            precondition(s.width == first.width && s.height == first.height, "labelTensor: slices differ in size")
            guard let label = s.label else { preconditionFailure("labelTensor: slice \(s.index) has no label") }
            scalars += label.lazy.map { Float($0) }
        }
        return Tensor(shape: [count, first.height, first.width], scalars: scalars)
    }
}

/// A problem with an ISBI-style dataset beyond the TIFF files themselves (those throw `TIFFError`).
public enum ISBIDatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A label pixel is neither 0 (membrane) nor 255 (cell).
    case invalidLabelValue(file: String, page: Int, value: Float, x: Int, y: Int)
    /// The label stack does not match the volume (page count or page size).
    case labelMismatch(file: String, message: String)
    /// The requested validation slices do not fit the stack.
    case invalidSplit(message: String)
    /// An image pixel (of a float stack) is NaN or infinite: it cannot be normalized, trained on or
    /// predicted.
    case nonFiniteIntensity(file: String, page: Int, value: Float, x: Int, y: Int)

    /// A message naming the file, the page and the problem.
    public var description: String {
        switch self {
        case let .invalidLabelValue(file, page, value, x, y):
            let shown = value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : String(value)
            return "\(file): page \(page): label value \(shown) at (x \(x), y \(y)); expected 0 (membrane) or 255 (cell)"
        case let .labelMismatch(file, message):
            return "\(file): \(message)"
        case let .invalidSplit(message):
            return "invalid train/validation split: \(message)"
        case let .nonFiniteIntensity(file, page, value, x, y):
            return "\(file): page \(page): pixel (x \(x), y \(y)) is \(value); expected finite intensities"
        }
    }
}

/// The ISBI 2012 EM segmentation data (or anything in its layout): `train-volume.tif`,
/// `train-labels.tif` and optionally `test-volume.tif`, multi-page grayscale TIFF stacks.
///
/// Images are normalized to [0, 1]; labels 255 become class 1 (cell) and 0 class 0 (membrane). The labeled
/// slices are split by index into training and validation slices (by default 0-24 and 25-29 for the
/// challenge's 30 slices; see `defaultValidationSlices(pageCount:)`).
///
/// ```swift
/// let data = try ISBIDataset(folder: URL(fileURLWithPath: "data/isbi2012"))
/// let x = data.train.imageTensor()      // [25, 1, 512, 512]
/// let y = data.train.labelTensor()      // [25, 512, 512]
/// ```
public struct ISBIDataset: Sendable {
    /// `train-volume.tif`.
    public static let volumeFileName = "train-volume.tif"
    /// `train-labels.tif`.
    public static let labelsFileName = "train-labels.tif"
    /// `test-volume.tif`.
    public static let testFileName = "test-volume.tif"
    /// Class index of membrane pixels (label value 0).
    public static let membraneClass: UInt8 = 0
    /// Class index of cell pixels (label value 255).
    public static let cellClass: UInt8 = 1

    /// Every labeled slice, in page order.
    public let slices: [EMSlice]
    /// The slice indices held out for validation.
    public let validationSlices: ClosedRange<Int>
    /// Training slices (labeled slices outside `validationSlices`).
    public let train: [EMSlice]
    /// Validation slices (labeled slices inside `validationSlices`).
    public let validation: [EMSlice]
    /// Unlabeled test slices (empty when there is no test volume).
    public let test: [EMSlice]

    /// Page width of the labeled stack.
    public var width: Int { slices.first?.width ?? 0 }
    /// Page height of the labeled stack.
    public var height: Int { slices.first?.height ?? 0 }

    /// The default validation slices for a stack of `pageCount` pages: the last sixth (at least one), so
    /// 25...29 for ISBI's 30 slices.
    public static func defaultValidationSlices(pageCount: Int) -> ClosedRange<Int> {
        let count = max(1, pageCount / 6)
        return (pageCount - count)...(pageCount - 1)
    }

    /// The validation slices of fold `fold` of `folds` for a stack of `pageCount` pages: the
    /// `fold`-th (0-based) of `folds` contiguous blocks, whose sizes differ by at most one (block i is
    /// `i * pageCount / folds ..< (i + 1) * pageCount / folds`); the other blocks are for training.
    ///
    /// - Throws: `ISBIDatasetError.invalidSplit` when `folds < 2`, `fold` is not in `0..<folds`, or
    ///   there are more folds than pages.
    public static func foldValidationSlices(pageCount: Int, folds: Int, fold: Int) throws -> ClosedRange<Int> {
        guard folds >= 2 else {
            throw ISBIDatasetError.invalidSplit(message: "\(folds) fold(s): cross-validation needs at least 2")
        }
        guard fold >= 0 && fold < folds else {
            throw ISBIDatasetError.invalidSplit(message: "fold \(fold) of \(folds): expected a fold in 0...\(folds - 1) (0-based)")
        }
        guard folds <= pageCount else {
            throw ISBIDatasetError.invalidSplit(message: "\(folds) folds of a stack of \(pageCount) page(s): expected at most \(pageCount) folds (one slice each)")
        }
        return (fold * pageCount / folds)...((fold + 1) * pageCount / folds - 1)
    }

    /// Loads the dataset from a folder in the ISBI layout.
    ///
    /// - Parameters:
    ///   - folder: holds `train-volume.tif` and `train-labels.tif`, and optionally `test-volume.tif`.
    ///   - validationSlices: slice indices held out for validation; `nil` for
    ///     `defaultValidationSlices(pageCount:)`. Must lie within the stack and leave a training slice.
    ///   - loadTest: whether to read `test-volume.tif` when present.
    ///   - contextSlices: 2.5D context (`SliceContext`): every slice, training, validation and test,
    ///     gets the images of its `contextSlices` neighbours on each side in its stack. A validation
    ///     slice's neighbours may be training slices (their images only, never their labels).
    /// - Throws: `TIFFError` for unreadable stacks, `ISBIDatasetError` for bad labels, NaN or infinite
    ///   image pixels, or a bad split.
    public init(folder: URL, validationSlices: ClosedRange<Int>? = nil, loadTest: Bool = true,
                contextSlices: Int = 0, limits: TIFFReadLimits = .default) throws {
        let volumeURL = folder.appendingPathComponent(Self.volumeFileName)
        let labelsURL = folder.appendingPathComponent(Self.labelsFileName)
        let testURL = folder.appendingPathComponent(Self.testFileName)
        let volume = try ImageStack.read(from: volumeURL, limits: limits)
        let labels = try ImageStack.read(from: labelsURL, limits: limits)
        var test: ImageStack? = nil
        if loadTest && FileManager.default.fileExists(atPath: testURL.path) {
            test = try ImageStack.read(from: testURL, limits: limits)
        }
        try volume.requireFiniteIntensities(file: volumeURL.path)
        try test?.requireFiniteIntensities(file: testURL.path)
        try self.init(volume: volume, labels: labels, test: test, validationSlices: validationSlices,
                      contextSlices: contextSlices, labelsName: labelsURL.path)
    }

    /// Builds the dataset from stacks already in memory (raw values, as `ImageStack.read` returns them).
    ///
    /// - Parameters:
    ///   - volume: the images; normalized to [0, 1] here (`ImageStack.normalized()`).
    ///   - labels: raw label values, 0 or 255 only; same page count and size as `volume`.
    ///   - test: optional unlabeled images, normalized likewise (any page size).
    ///   - contextSlices: neighbours on each side attached to every slice (`SliceContext`).
    ///   - labelsName: the name used for the labels in error messages.
    public init(volume: ImageStack, labels: ImageStack, test: ImageStack? = nil,
                validationSlices: ClosedRange<Int>? = nil, contextSlices: Int = 0,
                labelsName: String = ISBIDataset.labelsFileName) throws {
        if labels.pages != volume.pages {
            throw ISBIDatasetError.labelMismatch(
                file: labelsName, message: "has \(labels.pages) page(s) but the volume has \(volume.pages)")
        }
        if labels.width != volume.width || labels.height != volume.height {
            throw ISBIDatasetError.labelMismatch(
                file: labelsName,
                message: "pages are \(labels.width) x \(labels.height) but the volume's are \(volume.width) x \(volume.height)")
        }
        let n = volume.pages
        guard n >= 2 else {
            throw ISBIDatasetError.invalidSplit(message: "a stack of \(n) page(s) cannot be split into training and validation slices")
        }
        let split = validationSlices ?? Self.defaultValidationSlices(pageCount: n)
        if split.lowerBound < 0 || split.upperBound >= n {
            throw ISBIDatasetError.invalidSplit(message: "validation slices \(split.lowerBound)...\(split.upperBound) are outside the stack's pages 0...\(n - 1)")
        }
        if split.count >= n {
            throw ISBIDatasetError.invalidSplit(message: "validation slices \(split.lowerBound)...\(split.upperBound) leave no training slice")
        }

        let images = volume.normalized()
        var slices: [EMSlice] = []
        slices.reserveCapacity(n)
        for page in 0..<n {
            let classes = try Self.labelClasses(labels, page: page, file: labelsName)
            slices.append(EMSlice(index: page, width: volume.width, height: volume.height,
                                  image: images.page(page), label: classes))
        }
        let withContext = SliceContext.attach(radius: contextSlices, to: slices)
        self.slices = withContext
        self.validationSlices = split
        self.train = withContext.filter { !split.contains($0.index) }
        self.validation = withContext.filter { split.contains($0.index) }
        if let test {
            let normalized = test.normalized()
            self.test = SliceContext.attach(radius: contextSlices, to: (0..<test.pages).map {
                EMSlice(index: $0, width: test.width, height: test.height, image: normalized.page($0), label: nil)
            })
        } else {
            self.test = []
        }
    }

    /// Converts one page of raw labels (0 / 255) to classes (0 / 1).
    /// - Throws: `ISBIDatasetError.invalidLabelValue` naming the page, the first offending value and where it is.
    public static func labelClasses(_ labels: ImageStack, page: Int, file: String = ISBIDataset.labelsFileName) throws -> [UInt8] {
        let range = labels.pageRange(page)
        var classes = [UInt8](repeating: 0, count: range.count)
        try labels.pixels.withUnsafeBufferPointer { all in
            let p = all.baseAddress! + range.lowerBound
            for i in 0..<range.count {
                let v = p[i]
                if v == 255 { classes[i] = cellClass }
                else if v == 0 { classes[i] = membraneClass }
                else {
                    throw ISBIDatasetError.invalidLabelValue(file: file, page: page, value: v,
                                                             x: i % labels.width, y: i / labels.width)
                }
            }
        }
        return classes
    }

    /// The fraction of labeled pixels of class 1 (cell) over `slices` (about 0.78 for ISBI 2012).
    public static func cellFraction(of slices: [EMSlice]) -> Double {
        var cells = 0, total = 0
        for s in slices {
            guard let label = s.label else { continue }
            total += label.count
            for v in label where v == cellClass { cells += 1 }
        }
        return total > 0 ? Double(cells) / Double(total) : 0
    }
}
