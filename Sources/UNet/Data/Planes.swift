/// A single-channel grayscale image plane, `height` rows of `width` pixels, row-major.
///
/// Intensities are `Float`, normally in [0, 1] (an 8-bit slice divided by 255), or probabilities
/// when the plane holds a network's output.
public struct ImagePlane: Sendable, Equatable {
    /// Number of columns.
    public var width: Int
    /// Number of rows.
    public var height: Int
    /// `width * height` intensities, row after row (`pixels[y * width + x]`).
    public var pixels: [Float]

    /// Wraps `pixels` (`width * height` values, row-major).
    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height,
                     "ImagePlane: \(pixels.count) pixels for \(width) x \(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A plane of `width x height` pixels, all equal to `value`.
    public init(width: Int, height: Int, repeating value: Float = 0) {
        self.init(width: width, height: height, pixels: [Float](repeating: value, count: width * height))
    }

    /// Number of pixels.
    @inlinable public var count: Int { width * height }

    /// The intensity at column `x`, row `y`.
    @inlinable public subscript(x: Int, y: Int) -> Float {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }
}

/// A plane of class labels, `height` rows of `width` pixels, row-major.
///
/// For the EM membrane task class 0 is membrane (label 0 in the ISBI TIFFs) and class 1 is cell
/// (label 255 in the TIFFs).
public struct LabelPlane: Sendable, Equatable {
    /// Number of columns.
    public var width: Int
    /// Number of rows.
    public var height: Int
    /// `width * height` class indices, row after row (`classes[y * width + x]`).
    public var classes: [UInt8]

    /// Wraps `classes` (`width * height` class indices, row-major).
    public init(width: Int, height: Int, classes: [UInt8]) {
        precondition(width >= 0 && height >= 0 && classes.count == width * height,
                     "LabelPlane: \(classes.count) labels for \(width) x \(height)")
        self.width = width
        self.height = height
        self.classes = classes
    }

    /// Converts float labels (for example 0/1 or 0/255 stored as Float) to classes:
    /// a value above `threshold` is class 1 (cell), anything else class 0 (membrane).
    public init(width: Int, height: Int, floatLabels: [Float], threshold: Float = 0.5) {
        self.init(width: width, height: height, classes: floatLabels.map { $0 > threshold ? 1 : 0 })
    }

    /// Number of pixels.
    @inlinable public var count: Int { width * height }

    /// The class at column `x`, row `y`.
    @inlinable public subscript(x: Int, y: Int) -> UInt8 {
        get { classes[y * width + x] }
        set { classes[y * width + x] = newValue }
    }

    /// The labels as Floats (0, 1, ...), the layout a loss function takes as its target.
    public var floatClasses: [Float] { classes.map { Float($0) } }
}
