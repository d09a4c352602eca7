import Foundation
import OnboardingCore
import OnboardingEvents
import Testing

@Suite("Event ids and envelopes")
struct EventIDTests {
    @Test("event ids are 26 Crockford base32 characters and strictly increase, within a millisecond too")
    func idsIncrease() {
        struct FixedClock: WallClock { func now() -> Date { Date(timeIntervalSince1970: 1_796_000_000) } }
        let ids = EventIDGenerator(clock: FixedClock())
        var previous = ids.next()
        #expect(previous.count == 26)
        #expect(previous.allSatisfy { "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains($0) })
        for _ in 0..<10_000 {
            let next = ids.next()
            #expect(previous.utf8.lexicographicallyPrecedes(next.utf8), "\(previous) < \(next)")
            previous = next
        }
    }
}
