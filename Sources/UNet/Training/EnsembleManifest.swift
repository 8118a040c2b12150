import Foundation
import NN

/// The file `ensemble.json` in the folder of an ensemble trained by `unet train --members K`: which
/// run folders inside it hold the members, their seeds, and how each was started.
///
/// Each member is an ordinary run folder (`config.json`, `best.safetensors`, `last.safetensors`),
/// so every tool that reads one run reads a member. `bestCheckpoints(in:)` gives the files whose
/// averaged probabilities are the ensemble's prediction (`Segmenter(models:)`).
public struct EnsembleManifest: Codable, Equatable, Sendable {
    /// The manifest's file name inside the ensemble's folder.
    public static let fileName = "ensemble.json"
    /// The value of `format` that marks the file.
    public static let formatName = "unet-ensemble"
    /// The newest version this code reads and writes.
    public static let currentVersion = 1

    /// Always `formatName`.
    public var format: String = EnsembleManifest.formatName
    /// Layout version (`currentVersion`).
    public var version: Int = EnsembleManifest.currentVersion
    /// The members' run folders, each a single name inside the ensemble's folder (e.g. "seed-0").
    public var members: [String]
    /// Each member's training seed, in the order of `members`.
    public var seeds: [UInt64]
    /// The `unet train` arguments that start each member from scratch, in the order of `members`:
    /// a resume restarts a member that never saved a checkpoint with them.
    public var trainArguments: [[String]]

    /// Creates a manifest; the three arrays must have the same length.
    public init(members: [String], seeds: [UInt64], trainArguments: [[String]]) {
        self.members = members
        self.seeds = seeds
        self.trainArguments = trainArguments
    }

    /// The folder name of the member with `seed`: "seed-<seed>".
    public static func memberName(seed: UInt64) -> String { "seed-\(seed)" }

    /// Each member's run folder inside `folder`.
    public func memberFolders(in folder: URL) -> [URL] { members.map { folder.appendingPathComponent($0) } }

    /// Each member's `best.safetensors` inside `folder`.
    public func bestCheckpoints(in folder: URL) -> [URL] {
        memberFolders(in: folder).map { $0.appendingPathComponent(Trainer.bestCheckpointFileName) }
    }

    /// True when `folder` holds an `ensemble.json` (which may still be invalid).
    public static func exists(in folder: URL) -> Bool {
        FileManager.default.fileExists(atPath: folder.appendingPathComponent(fileName).path)
    }

    /// Reads and checks `folder`/ensemble.json.
    /// - Throws: `EnsembleManifestError` naming the file: unreadable, not JSON, another format or a
    ///   newer version, no members, arrays of different lengths, or a member name that is not a
    ///   single folder name (a path leaving the ensemble's folder).
    public static func load(from folder: URL) throws -> EnsembleManifest {
        let path = folder.appendingPathComponent(fileName).path
        func fail(_ reason: String) -> EnsembleManifestError { EnsembleManifestError(path: path, reason: reason) }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot be read") }
        let manifest: EnsembleManifest
        do {
            manifest = try JSONDecoder().decode(EnsembleManifest.self, from: data)
        } catch {
            throw fail("not an ensemble manifest (expected the JSON object `unet train --members` writes)")
        }
        guard manifest.format == formatName else { throw fail("format \"\(manifest.format)\", expected \"\(formatName)\"") }
        guard manifest.version >= 1 && manifest.version <= currentVersion else {
            throw fail("version \(manifest.version), expected 1...\(currentVersion) (written by a newer unet?)")
        }
        guard !manifest.members.isEmpty else { throw fail("no members") }
        guard manifest.seeds.count == manifest.members.count, manifest.trainArguments.count == manifest.members.count else {
            throw fail("\(manifest.members.count) members but \(manifest.seeds.count) seeds and \(manifest.trainArguments.count) argument lists")
        }
        for name in manifest.members where name.isEmpty || name.contains("/") || name == "." || name == ".." {
            throw fail("member \"\(name)\": expected a folder name inside the ensemble's folder")
        }
        guard Set(manifest.members).count == manifest.members.count else { throw fail("a member is listed twice") }
        return manifest
    }

    /// Writes `folder`/ensemble.json atomically (temporary file + rename).
    public func save(to folder: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFileWriter.write(Array(encoder.encode(self)), to: folder.appendingPathComponent(Self.fileName).path)
    }
}

/// An `ensemble.json` that cannot be used; names the file and why.
public struct EnsembleManifestError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The manifest's path.
    public let path: String
    /// What is wrong.
    public let reason: String
    /// `"<path>: <reason>"`.
    public var description: String { "\(path): \(reason)" }
}
