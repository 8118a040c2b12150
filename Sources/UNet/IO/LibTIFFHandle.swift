import CTIFF
import CTIFFShim
#if canImport(Glibc)
import Glibc
#endif

/// Collects libtiff's error and warning messages for one open handle.
final class TIFFMessageSink {
    private(set) var messages: [String] = []
    private(set) var errorCount = 0

    func append(_ message: String, isError: Bool) {
        // Keep memory bounded for pathological files that warn about every tag.
        if messages.count < 64 { messages.append(isError ? message : "warning: " + message) }
        if isError { errorCount += 1 }
    }
}

/// Formats a libtiff message (printf format + va_list) and hands it to the sink in `userData`.
private func formatTIFFMessage(_ userData: UnsafeMutableRawPointer?, _ module: UnsafePointer<CChar>?,
                               _ format: UnsafePointer<CChar>?, _ args: CVaListPointer?, isError: Bool) {
    guard let userData else { return }
    var text = ""
    if let format, let args {
        var buffer = [CChar](repeating: 0, count: 1024)
        _ = vsnprintf(&buffer, buffer.count, format, args)
        text = String(cString: buffer)
    }
    if let module {
        let m = String(cString: module)
        if !m.isEmpty && !text.hasPrefix(m) { text = m + ": " + text }
    }
    Unmanaged<TIFFMessageSink>.fromOpaque(userData).takeUnretainedValue().append(text, isError: isError)
}

private let tiffErrorHandler: TIFFErrorHandlerExtR = { _, userData, module, format, args in
    formatTIFFMessage(userData, module, format, args, isError: true)
    return 1   // handled: libtiff must not call its global handler (which prints to stderr)
}

private let tiffWarningHandler: TIFFErrorHandlerExtR = { _, userData, module, format, args in
    formatTIFFMessage(userData, module, format, args, isError: false)
    return 1
}

/// One libtiff handle opened on a file descriptor we opened ourselves (so that a missing file is our error,
/// not a message libtiff would print through its process-global handler), with per-handle message capture.
final class LibTIFFHandle {
    let tif: OpaquePointer
    let sink: TIFFMessageSink
    let path: String
    private var closed = false

    private init(tif: OpaquePointer, sink: TIFFMessageSink, path: String) {
        self.tif = tif
        self.sink = sink
        self.path = path
    }

    /// Opens `fd` (which the handle then owns: it is closed with the handle, or here on failure).
    /// - Parameter maxSingleAllocation: libtiff's own cap on any one internal allocation.
    static func open(fd: Int32, path: String, mode: String, maxSingleAllocation: Int,
                     sink: TIFFMessageSink = TIFFMessageSink()) -> (LibTIFFHandle?, TIFFMessageSink) {
        guard let options = TIFFOpenOptionsAlloc() else {
            Glibc.close(fd)
            sink.append("TIFFOpenOptionsAlloc failed", isError: true)
            return (nil, sink)
        }
        defer { TIFFOpenOptionsFree(options) }
        let context = Unmanaged.passUnretained(sink).toOpaque()
        TIFFOpenOptionsSetErrorHandlerExtR(options, tiffErrorHandler, context)
        TIFFOpenOptionsSetWarningHandlerExtR(options, tiffWarningHandler, context)
        TIFFOpenOptionsSetMaxSingleMemAlloc(options, tmsize_t(maxSingleAllocation))
        guard let tif = TIFFFdOpenExt(fd, path, mode, options) else {
            Glibc.close(fd)
            return (nil, sink)
        }
        return (LibTIFFHandle(tif: tif, sink: sink, path: path), sink)
    }

    /// Closes the handle (flushing pending writes). Safe to call twice.
    func close() {
        guard !closed else { return }
        closed = true
        withExtendedLifetime(sink) { TIFFClose(tif) }
    }

    deinit { close() }

    // MARK: tag access

    func u16(_ tag: Int32) -> UInt16? {
        var v: UInt16 = 0
        return ctiff_get_u16(tif, UInt32(tag), &v) == 1 ? v : nil
    }

    func u16Defaulted(_ tag: Int32) -> UInt16? {
        var v: UInt16 = 0
        return ctiff_get_u16_defaulted(tif, UInt32(tag), &v) == 1 ? v : nil
    }

    func u32(_ tag: Int32) -> UInt32? {
        var v: UInt32 = 0
        return ctiff_get_u32(tif, UInt32(tag), &v) == 1 ? v : nil
    }

    func u32Defaulted(_ tag: Int32) -> UInt32? {
        var v: UInt32 = 0
        return ctiff_get_u32_defaulted(tif, UInt32(tag), &v) == 1 ? v : nil
    }

    @discardableResult
    func set(_ tag: Int32, u16 value: UInt16) -> Bool { ctiff_set_u16(tif, UInt32(tag), value) == 1 }
    @discardableResult
    func set(_ tag: Int32, u32 value: UInt32) -> Bool { ctiff_set_u32(tif, UInt32(tag), value) == 1 }
    @discardableResult
    func set(_ tag: Int32, u16 a: UInt16, _ b: UInt16) -> Bool { ctiff_set_u16_pair(tif, UInt32(tag), a, b) == 1 }
    @discardableResult
    func set(_ tag: Int32, string value: String) -> Bool { ctiff_set_string(tif, UInt32(tag), value) == 1 }
}

/// `strerror(errno)` as a Swift string.
func errnoDescription(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
