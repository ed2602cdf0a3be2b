// libFuzzer target for the serializer's decoders and the frame parsers (issue 10, "Tests that
// must exist"). Built only by scripts/fuzz.sh (EXECNET_FUZZ=1 adds this target to the package,
// with -sanitize=fuzzer,address); a normal `swift build` never sees it.
//
// The first input byte picks the parser; the rest is its input:
//   0: `loads` (versioned), then the round-trip invariant: what decodes, encodes, and decodes to itself;
//   1: the channel payload decoder (unversioned), same invariant;
//   2: `WireMessage.parse` of frames cut from the input (each frame: a length byte, then bytes),
//      then the payload through the channel decoder and `ControlPayload`; the broker's header
//      decoding (`WireCodec.decodeHeader`) must agree with it on three frames.

@testable import ExecnetCore
@testable import ExecnetValue
#if canImport(Glibc)
import Glibc
#endif

// SwiftPM makes this file's top-level code the program's `main`, so libFuzzer's own `main` is not
// linked in: hand the command line to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
let status = runFuzzerDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
exit(status)

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch data[0] % 3 {
    case 0:
        if let value = try? loads(input) { checkRoundTrip(value) }
    case 1:
        if let value = try? Serializer.decodeInternal(input, resolveChannel: nil) { checkRoundTrip(value) }
    default:
        var frames: [[UInt8]] = []
        var i = 0
        while i < input.count {
            let length = Int(input[i])
            let end = min(input.count, i + 1 + length)
            frames.append(Array(input[(i + 1)..<end]))
            i = end
        }
        let parsed = try? WireMessage.parse(frames)
        if frames.count == 3 {
            let header = frames[0].withUnsafeBytes { channel in
                frames[1].withUnsafeBytes { type in try? WireCodec.decodeHeader(channel: channel, type: type) }
            }
            if header?.channelID != parsed?.channelID || header?.type != parsed?.type {
                fatalError("the frame codec's two paths disagree on \(frames)")
            }
        }
        if let message = parsed {
            _ = try? Serializer.decodeInternal(message.payload, resolveChannel: nil)
            if let control = ControlPayload(decoding: message.payload) {
                _ = control.workerExit
                _ = control.encoded
            }
        }
    }
    return 0
}

/// What decodes must encode (decoded sets and dicts hold only members Python keeps apart), and
/// the encoding must be a fixed point: decoding it and encoding again gives the same bytes.
/// (Compared as bytes: the encoder walks without recursion, while `==` recurses, and 3,000
/// levels of it overflow a sanitizer build's stack.)
private func checkRoundTrip(_ value: Value) {
    let bytes: [UInt8]
    do {
        bytes = try dumps(value)
    } catch {
        fatalError("a decoded value does not encode: \(error)")
    }
    guard let again = try? loads(bytes), let bytesAgain = try? dumps(again), bytesAgain == bytes else {
        fatalError("a decoded value does not survive a round trip")
    }
}
