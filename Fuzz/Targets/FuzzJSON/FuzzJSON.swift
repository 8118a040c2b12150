// libFuzzer target: the strict JSON parser of safetensors headers (NN's internal `JSONParser`,
// reached with @testable import; tools/fuzz.sh builds with -enable-testing). Every input must parse
// or throw `JSONSyntaxError` with an offset within the input; what parses must survive a round trip
// through the writer's string encoding.
// With FUZZ_WRITE_SEEDS=<folder> in the environment it writes its seed files there and exits.
import Foundation
import FuzzSupport
@testable import NN
#if canImport(Glibc)
import Glibc
#endif

/// Writes `value` back as JSON text (strings through the writer's `appendJSONString`).
private func encode(_ value: JSONValue, into out: inout String) {
    switch value {
    case .object(let members):
        out += "{"
        for (i, member) in members.enumerated() {
            if i > 0 { out += "," }
            appendJSONString(member.key, to: &out)
            out += ":"
            encode(member.value, into: &out)
        }
        out += "}"
    case .array(let elements):
        out += "["
        for (i, element) in elements.enumerated() {
            if i > 0 { out += "," }
            encode(element, into: &out)
        }
        out += "]"
    case .string(let s): appendJSONString(s, to: &out)
    case .number(let text): out += text
    case .bool(let b): out += b ? "true" : "false"
    case .null: out += "null"
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let value: JSONValue
    do {
        value = try JSONParser.parse(bytes)
    } catch let error as JSONSyntaxError {
        precondition(error.offset >= 0 && error.offset <= bytes.count, "error offset \(error.offset) outside the input")
        return 0
    } catch {
        fatalError("JSONParser threw \(type(of: error)): \(error)")
    }
    // Strings with invalid UTF-8 are decoded with replacement characters, so only valid UTF-8 input
    // is expected to round-trip exactly.
    guard String(validating: bytes, as: UTF8.self) != nil else { return 0 }
    var text = ""
    encode(value, into: &text)
    do {
        let again = try JSONParser.parse(Array(text.utf8))
        precondition(again == value, "round trip changed the value: \(text)")
    } catch {
        fatalError("re-encoded value does not parse: \(error) in \(text)")
    }
    return 0
}

private let seeds: [String] = [
    #"{}"#,
    #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#,
    #"{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}"#,
    #"[1, -0.5e+10, 2E-3, 0, true, false, null, "x\u00e9\ud83d\ude00\n\t\"\\\/"]"#,
    #"{"k":[[[[]]]],"n":-0,"s":""}"#,
]

@_cdecl("LLVMFuzzerInitialize")
public func fuzzJSONInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    if let folder = requestedSeedFolder {
        for (i, seed) in seeds.enumerated() {
            _ = FileManager.default.createFile(atPath: "\(folder)/seed-\(i).json", contents: Data(seed.utf8))
        }
        print("FuzzJSON: wrote \(seeds.count) seeds to \(folder)")
        exit(0)
    }
    return 0
}

@_cdecl("FuzzJSON_main")
public func FuzzJSONMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzJSON)
}
