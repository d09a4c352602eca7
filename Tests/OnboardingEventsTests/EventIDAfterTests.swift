import Foundation
import OnboardingCore
import Testing

/// `EventIDGenerator.next(after:)`: a tenant's next id is above its latest one, whatever this
/// process's clock says (another process with a clock ahead may have made the latest).
@Suite("Event ids after a tenant's latest id")
struct EventIDAfterTests {
    struct FixedClock: WallClock {
        let date: Date
        func now() -> Date { date }
    }

    static let time = Date(timeIntervalSince1970: 1_796_000_000)

    @Test("with a clock an hour behind the process that made the latest id, the next id is still greater, and so are later ones")
    func clockBehind() {
        let ahead = EventIDGenerator(clock: FixedClock(date: Self.time))
        let behind = EventIDGenerator(clock: FixedClock(date: Self.time - 3600))
        let latest = ahead.next()
        let unordered = behind.next()
        #expect(unordered < latest, "the lagging clock alone would go backwards")
        let next = behind.next(after: latest)
        #expect(next > latest)
        #expect(next.prefix(10) == latest.prefix(10), "the successor keeps the latest id's time")
        #expect(next.count == 26)
        // The generator remembers it: its later ids (with or without a latest id) stay above.
        let later = behind.next()
        #expect(later > next)
        #expect(behind.next(after: latest) > later)
    }

    @Test("with a clock ahead (or no latest id, or text that is no id) the id is a fresh one")
    func clockAhead() {
        let behind = EventIDGenerator(clock: FixedClock(date: Self.time - 3600))
        let ahead = EventIDGenerator(clock: FixedClock(date: Self.time))
        let old = behind.next()
        let fresh = ahead.next(after: old)
        #expect(fresh > old)
        #expect(fresh.prefix(10) == ahead.next().prefix(10), "the clock's own time")
        #expect(ahead.next(after: nil) > fresh)
        #expect(ahead.next(after: "not an id") > fresh)
    }

    @Test("the successor of an id whose random part is all ones carries into the time part")
    func carry() {
        // A clock at the epoch: every fresh id is below these.
        let epoch = FixedClock(date: Date(timeIntervalSince1970: 0))
        #expect(EventIDGenerator(clock: epoch).next(after: "01J0000000ZZZZZZZZZZZZZZZZ") == "01J00000010000000000000000")
        #expect(EventIDGenerator(clock: epoch).next(after: "01J0000000000000000000000Z") == "01J00000000000000000000010")
    }
}
