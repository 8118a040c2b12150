import Dispatch
import Foundation

/// Turns SIGINT/SIGTERM into a flag that training polls between batches (`Trainer.shouldStop`).
///
/// The signals are ignored at the process level and delivered to dispatch sources, so no code runs
/// inside a signal handler; the source's event handler only sets the flag (and on a second signal
/// exits at once: checkpoints are written atomically, so that never leaves a corrupt file).
final class InterruptFlag {
    private let lock = NSLock()
    private var raised: Int32? = nil
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "unet.signals")

    /// The signal received, if any.
    var signal: Int32? {
        lock.lock(); defer { lock.unlock() }
        return raised
    }

    /// True once SIGINT or SIGTERM arrived.
    var isRaised: Bool { signal != nil }

    /// Starts catching SIGINT and SIGTERM; `onFirst` runs (on a private queue) when the first arrives,
    /// and `onAgain` when another does, just before the process exits.
    func install(onFirst: @escaping (Int32) -> Void, onAgain: ((Int32) -> Void)? = nil) {
        for sig in [SIGINT, SIGTERM] {
            Foundation.signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let first = self.raised == nil
                if first { self.raised = sig }
                self.lock.unlock()
                if first {
                    onFirst(sig)
                } else {
                    onAgain?(sig)
                    printError("\nunet: interrupted again: exiting without waiting for the checkpoint")
                    exit(ExitStatus.interrupted.rawValue)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Restores the default signal behaviour.
    func uninstall() {
        for source in sources { source.cancel() }
        sources.removeAll()
        Foundation.signal(SIGINT, SIG_DFL)
        Foundation.signal(SIGTERM, SIG_DFL)
    }
}
