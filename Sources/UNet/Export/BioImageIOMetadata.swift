import Foundation

/// The fields of a bioimage.io package's `rdf.yaml` that say who made the model and what to call it:
/// the ones `unet export --bioimageio` takes as flags (`--name`, `--description`, `--author`,
/// `--license`, `--tag`). The rest of the description comes from the checkpoint.
public struct BioImageIOMetadata: Sendable, Equatable {
    /// The model's name: 5 to 128 letters, digits, spaces and `_+-()` (the spec's rule).
    public var name: String
    /// A one-paragraph description (at most 1024 characters).
    public var description: String
    /// The people who made the model; at least one. A name may not contain `/`.
    public var authors: [String]
    /// An SPDX license identifier (https://spdx.org/licenses/), e.g. "MIT" or "CC-BY-4.0".
    public var license: String
    /// Free-form tags, in addition to the ones the package always has (`BioImageIOPackage.standardTags`).
    public var tags: [String]

    /// The placeholder author when none is given.
    public static let defaultAuthor = "swift-unet user"
    /// The default license (the repository declares none; users set the one their weights may be
    /// shared under).
    public static let defaultLicense = "MIT"

    /// Creates metadata; the defaults are sensible placeholders (see `defaults(for:)`).
    public init(name: String, description: String, authors: [String] = [BioImageIOMetadata.defaultAuthor],
                license: String = BioImageIOMetadata.defaultLicense, tags: [String] = []) {
        self.name = name
        self.description = description
        self.authors = authors
        self.license = license
        self.tags = tags
    }

    /// Placeholder metadata for a model: a name and description from its architecture, the default
    /// author and license.
    public static func defaults(for configuration: UNetConfiguration) -> BioImageIOMetadata {
        BioImageIOMetadata(
            name: "EM membrane U-Net (swift-unet base \(configuration.baseFilters) depth \(configuration.depth))",
            description: "A 2D U-Net that segments cell membranes in electron-microscopy images, trained with "
                + "swift-unet (\(configuration.summary)).")
    }

    /// The characters the spec allows in `name`.
    static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        (c.value >= 0x30 && c.value <= 0x39) || (c.value >= 0x41 && c.value <= 0x5A) || (c.value >= 0x61 && c.value <= 0x7A)
            || "_+- ()".unicodeScalars.contains(c)
    }

    /// Throws `BioImageIOExportError.invalidMetadata` naming the first field the spec would reject.
    public func validate() throws {
        func fail(_ field: String, _ value: String, _ expected: String) -> BioImageIOExportError {
            .invalidMetadata(field: field, value: value, expected: expected)
        }
        guard (5...128).contains(name.count), name.unicodeScalars.allSatisfy(Self.isNameCharacter) else {
            throw fail("name", name, "5 to 128 letters, digits, spaces and _+-()")
        }
        guard description.count <= 1024 else { throw fail("description", String(description.prefix(40)) + "...", "at most 1024 characters") }
        guard !authors.isEmpty else { throw fail("author", "", "at least one author") }
        for author in authors where author.trimmingCharacters(in: .whitespaces).isEmpty || author.contains("/") {
            throw fail("author", author, "a non-empty name without '/'")
        }
        guard !license.isEmpty, license.unicodeScalars.allSatisfy({ Self.isLicenseCharacter($0) }) else {
            throw fail("license", license, "an SPDX license identifier such as MIT or CC-BY-4.0")
        }
        for tag in tags where tag.isEmpty || tag.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw fail("tag", tag, "a non-empty tag without control characters")
        }
    }

    private static func isLicenseCharacter(_ c: Unicode.Scalar) -> Bool {
        (c.value >= 0x30 && c.value <= 0x39) || (c.value >= 0x41 && c.value <= 0x5A) || (c.value >= 0x61 && c.value <= 0x7A)
            || ".-+".unicodeScalars.contains(c)
    }
}

/// A model or its metadata that cannot be written as a bioimage.io package.
public enum BioImageIOExportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A metadata field the spec would reject: the field, the value, what is expected.
    case invalidMetadata(field: String, value: String, expected: String)
    /// The test image does not fit the model: what is wrong.
    case invalidTestImage(String)
    /// The network's weights cannot be written as ONNX (NaN weights, too large).
    case onnx(ONNXExportError)
    /// A file of the package cannot be encoded (a ZIP or .npy limit); the reason.
    case encoding(String)

    /// One line naming the problem.
    public var description: String {
        switch self {
        case let .invalidMetadata(field, value, expected):
            return "invalid bioimage.io \(field) '\(value)': expected \(expected)"
        case let .invalidTestImage(reason):
            return "cannot make the package's test image: \(reason)"
        case let .onnx(error):
            return error.description
        case let .encoding(reason):
            return "cannot write the bioimage.io package: \(reason)"
        }
    }
}
