import Foundation
import NN

extension Trainer {
    /// Deletes the temporary files that a killed earlier process left in the run folder and its
    /// `previews/` (see `AtomicFileWriter.removeStaleTemporaries(in:)`), and says so. Rank 0 only,
    /// at the start of `run()`: a run killed again and again does not pile them up.
    func removeStaleTemporaries() {
        guard collective.isLeader else { return }
        for folder in [runFolder, runFolder.appendingPathComponent("previews")] {
            let removed = AtomicFileWriter.removeStaleTemporaries(in: folder.path)
            if !removed.isEmpty {
                report(.message("removed \(removed.count) temporary file(s) that an interrupted write left in \(folder.path)"))
            }
        }
    }
}
