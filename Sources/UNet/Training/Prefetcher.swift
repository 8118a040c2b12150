import Foundation

/// Produces items `0..<count` in order on a background thread, at most `depth` ahead of the
/// consumer, so the next batch is ready when a training step asks for it.
///
/// `produce` runs on the background thread only; `next()` on the consumer's. Dropping the
/// prefetcher (or calling `cancel()`) stops production after the item in progress.
package final class Prefetcher<Item>: @unchecked Sendable {
    private let count: Int
    private var nextToTake = 0
    private var ready: [Int: Item] = [:]
    private let condition = NSCondition()
    private var cancelled = false
    private var produced = 0
    private let depth: Int

    /// Starts producing at once.
    package init(count: Int, depth: Int = 2, produce: @escaping @Sendable (Int) -> Item) {
        self.count = count
        self.depth = max(1, depth)
        let thread = Thread { [weak self] in
            var index = 0
            while index < count {
                guard let self else { return }
                self.condition.lock()
                while !self.cancelled && self.produced - self.nextToTake >= self.depth { self.condition.wait() }
                if self.cancelled { self.condition.unlock(); return }
                self.condition.unlock()
                let item = produce(index)
                self.condition.lock()
                self.ready[index] = item
                self.produced += 1
                self.condition.broadcast()
                self.condition.unlock()
                index += 1
            }
        }
        thread.name = "unet.prefetch"
        thread.start()
    }

    /// The next item in order, waiting for it if needed; nil after the last one.
    package func next() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        guard nextToTake < count else { return nil }
        while ready[nextToTake] == nil { condition.wait() }
        let item = ready.removeValue(forKey: nextToTake)
        nextToTake += 1
        condition.broadcast()
        return item
    }

    /// Stops production.
    package func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    deinit { cancel() }
}
