-- aggregates kept by a trigger on each recorded call
-- Every recorded call updates its action's aggregates in the same statement, so they are
-- exact by construction. The CLI may record with its own clock, so the latest times are kept.
CREATE TRIGGER calls_aggregate AFTER INSERT ON calls BEGIN
    INSERT INTO call_totals (action, outcome, calls, latency_ms)
    VALUES (NEW.action, NEW.outcome, 1, NEW.latency_ms)
    ON CONFLICT (action, outcome) DO UPDATE SET
        calls = calls + 1,
        latency_ms = latency_ms + excluded.latency_ms;
    INSERT INTO action_activity (action, last_call_at, last_error, last_error_at)
    VALUES (
        NEW.action,
        NEW.recorded_at,
        CASE WHEN NEW.outcome = 'success' THEN NULL ELSE COALESCE(NEW.error, NEW.outcome) END,
        CASE WHEN NEW.outcome = 'success' THEN NULL ELSE NEW.recorded_at END
    )
    ON CONFLICT (action) DO UPDATE SET
        last_call_at = MAX(last_call_at, excluded.last_call_at),
        last_error = CASE WHEN excluded.last_error_at >= COALESCE(last_error_at, 0)
                          THEN excluded.last_error ELSE last_error END,
        last_error_at = CASE WHEN excluded.last_error_at >= COALESCE(last_error_at, 0)
                             THEN excluded.last_error_at ELSE last_error_at END;
END;
