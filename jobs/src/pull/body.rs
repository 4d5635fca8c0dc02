//! A batch's rows as the JSON array one callback POST carries, split so that no
//! POST is larger than the operator's byte limit.

use serde_json::Value;
use sluice_connect::{Batch, ResultColumns};

/// Rows' JSON array, ready to send, with their result's columns and Last Field values.
pub(crate) struct PreparedBatch {
    pub columns: ResultColumns,
    /// How many rows the body carries.
    pub rows: usize,
    pub body: Vec<u8>,
    /// Each row's Last Field value, when the command has a Last Field.
    pub cursor: Vec<Value>,
}

/// `batch` as JSON arrays of at most `max_bytes` each, in order: the batch's
/// own text when it fits (no copy), more arrays otherwise. A single row that
/// cannot fit alone is an error naming its size (the run fails rather than send
/// a POST the limit forbids).
pub(crate) fn prepare(batch: Batch, max_bytes: usize) -> Result<Vec<PreparedBatch>, String> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut cursor: Vec<Value> = (0..batch.len())
        .filter_map(|index| batch.cursor_json(index))
        .map(|json| serde_json::from_slice(json).unwrap_or(Value::Null))
        .collect();
    let columns = batch.columns.clone();
    if batch.array_len() <= max_bytes {
        return Ok(vec![PreparedBatch {
            columns,
            rows: batch.len(),
            body: batch.into_array(),
            cursor,
        }]);
    }
    let mut parts = Vec::new();
    let mut body = vec![b'['];
    let mut taken = 0;
    for index in 0..batch.len() {
        let row = batch.row_json(index);
        let separator = usize::from(taken > 0);
        // The row, and the closing bracket after it, must fit.
        if body.len() + separator + row.len() < max_bytes {
            if taken > 0 {
                body.push(b',');
            }
            body.extend_from_slice(row);
            taken += 1;
            continue;
        }
        if taken == 0 || 1 + row.len() >= max_bytes {
            return Err(format!(
                "a row is {} bytes of JSON, more than the {max_bytes} bytes one callback POST may \
                 carry on this instance (SLUICE_MAX_BATCH_BYTES): select fewer or shorter columns",
                row.len()
            ));
        }
        // This row starts the next POST.
        body.push(b']');
        let rest = cursor.split_off(taken.min(cursor.len()));
        parts.push(PreparedBatch {
            columns: columns.clone(),
            rows: taken,
            body: std::mem::replace(&mut body, vec![b'[']),
            cursor: std::mem::replace(&mut cursor, rest),
        });
        body.extend_from_slice(row);
        taken = 1;
    }
    if taken > 0 {
        body.push(b']');
        parts.push(PreparedBatch {
            columns,
            rows: taken,
            body,
            cursor,
        });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};
    use sluice_connect::{CursorSort, ResultColumn};

    type Row = Map<String, Value>;

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| {
                json!({"id": i, "name": "x".repeat(10)})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    fn batch(rows: Vec<Row>) -> Batch {
        let columns = vec![ResultColumn {
            name: "id".into(),
            sort: CursorSort::Integer,
        }];
        Batch::from_rows(columns.into(), rows, Some("id"))
    }

    #[test]
    fn a_batch_within_the_limit_is_one_array_equal_to_serde_json() {
        let batches = prepare(batch(rows(3)), 1 << 20).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].body, serde_json::to_vec(&rows(3)).unwrap());
        assert_eq!(batches[0].rows, 3);
        assert_eq!(batches[0].cursor, [json!(0), json!(1), json!(2)]);
        // Exactly at the limit still fits.
        let exact = serde_json::to_vec(&rows(3)).unwrap().len();
        assert_eq!(prepare(batch(rows(3)), exact).unwrap().len(), 1);
        assert_eq!(prepare(batch(rows(3)), exact - 1).unwrap().len(), 2);
    }

    #[test]
    fn a_larger_batch_is_split_in_order_and_every_part_is_within_the_limit() {
        let all = rows(100);
        let limit = 300;
        let batches = prepare(batch(all.clone()), limit).unwrap();
        assert!(batches.len() > 1);
        let mut seen = Vec::new();
        let mut cursor = Vec::new();
        for part in &batches {
            assert!(part.body.len() <= limit, "{}", part.body.len());
            let parsed: Vec<Row> = serde_json::from_slice(&part.body).unwrap();
            assert_eq!(parsed.len(), part.rows);
            assert_eq!(part.cursor.len(), part.rows);
            seen.extend(parsed);
            cursor.extend(part.cursor.iter().cloned());
        }
        assert_eq!(seen, all);
        assert_eq!(cursor, (0..100).map(|i| json!(i)).collect::<Vec<_>>());
    }

    #[test]
    fn a_row_larger_than_the_limit_is_an_error_naming_its_size() {
        let error = prepare(batch(rows(2)), 20).err().unwrap();
        assert!(error.contains("bytes of JSON"), "{error}");
        assert!(error.contains("SLUICE_MAX_BATCH_BYTES"), "{error}");
        // Also when it comes after rows that fit.
        let mut mixed = rows(2);
        mixed.push(
            json!({"id": 9, "name": "y".repeat(500)})
                .as_object()
                .unwrap()
                .clone(),
        );
        let error = prepare(batch(mixed), 300).err().unwrap();
        assert!(error.contains("bytes of JSON"), "{error}");
    }

    #[test]
    fn no_rows_make_no_batch() {
        assert!(prepare(batch(Vec::new()), 100).unwrap().is_empty());
    }
}
