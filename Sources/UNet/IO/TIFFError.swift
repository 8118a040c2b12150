/// An error reading or writing a TIFF stack: which file, which page (when one is concerned), what went wrong,
/// and the messages libtiff itself reported on the way (captured per handle, never printed to stderr).
///
/// ```
/// train-labels.tif: page 3: RGB color image (3 samples per pixel) where grayscale is expected
/// broken.tif: truncated: page 0: strip 0 could not be read [libtiff: Read error on strip 0; got 100 bytes, expected 4096]
/// ```
public struct TIFFError: Error, CustomStringConvertible, Sendable {
    /// The category of a `TIFFError`, for callers that react to some problems differently.
    public enum Kind: String, Sendable, Equatable {
        /// The file does not exist or cannot be opened.
        case cannotOpen
        /// The file does not start with a TIFF header.
        case notATIFF
        /// The file ends before its header, a directory, a tag's values or pixel data that it announces.
        case truncated
        /// The file holds no pages (0 bytes, or a header whose first directory offset is 0).
        case empty
        /// A page is not single-channel grayscale (RGB, palette, YCbCr, CMYK, extra samples, ...).
        case notGrayscale
        /// A page has a bit depth or sample format this reader does not support.
        case unsupportedFormat
        /// Pages of one stack differ in size or in sample format.
        case inconsistentPages
        /// Dimensions are zero, exceed the per-side limit, or the stack would exceed the memory limit.
        case absurdDimensions
        /// libtiff failed to decode a directory or pixel data that lies within the file (corrupt file),
        /// or a directory lacks what every page needs (image width and length, a tile size).
        case corrupt
        /// Writing failed (disk full, permission, invalid values, rename failed, ...).
        case writeFailed
    }

    /// What kind of problem this is.
    public let kind: Kind
    /// The file concerned, as given by the caller.
    public let path: String
    /// The page (0-based directory index) concerned, if the problem is tied to one page.
    public let page: Int?
    /// A human-readable explanation of the problem.
    public let message: String
    /// The error and warning messages libtiff emitted for this file, in order (for the reader; the
    /// `kind` never depends on their wording).
    public let libtiffMessages: [String]
    /// The system's error number (`errno`) when opening, examining or creating the file failed
    /// (`ENOENT` for a missing file, `EACCES` for one without permission); nil otherwise.
    public let systemErrorCode: Int32?

    /// Creates an error; normally only the TIFF reader and writer do this.
    public init(_ kind: Kind, path: String, page: Int? = nil, message: String, libtiffMessages: [String] = [],
                systemErrorCode: Int32? = nil) {
        self.kind = kind
        self.path = path
        self.page = page
        self.message = message
        self.libtiffMessages = libtiffMessages
        self.systemErrorCode = systemErrorCode
    }

    /// `"<path>: page <n>: <message> [libtiff: <messages>]"`.
    public var description: String {
        var s = path + ": "
        if let page { s += "page \(page): " }
        s += message
        if !libtiffMessages.isEmpty { s += " [libtiff: " + libtiffMessages.joined(separator: "; ") + "]" }
        return s
    }
}
