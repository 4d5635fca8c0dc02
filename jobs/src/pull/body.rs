//! A batch's rows as the JSON array one callback POST carries, split so that no
//! POST is larger than the operator's byte limit.

use serde_json::{Map, Value};
use sluice_connect::ResultColumns;

pub(crate) type Row = Map<String, Value>;

/// Rows and their JSON array, ready to send, with their result's columns.
pub(crate) struct PreparedBatch {
    pub columns: ResultColumns,
    pub rows: Vec<Row>,
    pub body: Vec<u8>,
}

/// Serialises `rows` as JSON arrays of at most `max_bytes` each, in order: one
/// array when they fit, more otherwise. A single row that cannot fit alone is an
/// error naming its size (the run fails rather than send a POST the limit forbids).
pub(crate) fn prepare(
    columns: &ResultColumns,
    mut rows: Vec<Row>,
    max_bytes: usize,
) -> Result<Vec<PreparedBatch>, String> {
    let mut batches = Vec::new();
    let mut body = vec![b'['];
    let mut taken = 0;
    let mut index = 0;
    while index < rows.len() {
        let before = body.len();
        if taken > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &rows[index]).map_err(|e| e.to_string())?;
        if body.len() < max_bytes {
            taken += 1;
            index += 1;
            continue;
        }
        if taken == 0 {
            return Err(format!(
                "a row is {} bytes of JSON, more than the {max_bytes} bytes one callback POST may \
                 carry on this instance (SLUICE_MAX_BATCH_BYTES): select fewer or shorter columns",
                body.len() - 1
            ));
        }
        // This row starts the next POST.
        body.truncate(before);
        body.push(b']');
        let done: Vec<Row> = rows.drain(..taken).collect();
        batches.push(PreparedBatch {
            columns: columns.clone(),
            rows: done,
            body,
        });
        body = vec![b'['];
        taken = 0;
        index = 0;
    }
    if taken > 0 {
        body.push(b']');
        batches.push(PreparedBatch {
            columns: columns.clone(),
            rows,
            body,
        });
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prepare(rows: Vec<Row>, max_bytes: usize) -> Result<Vec<PreparedBatch>, String> {
        super::prepare(&Vec::new().into(), rows, max_bytes)
    }

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

    #[test]
    fn a_batch_within_the_limit_is_one_array_equal_to_serde_json() {
        let batches = prepare(rows(3), 1 << 20).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].body, serde_json::to_vec(&rows(3)).unwrap());
        assert_eq!(batches[0].rows.len(), 3);
    }

    #[test]
    fn a_larger_batch_is_split_in_order_and_every_part_is_within_the_limit() {
        let all = rows(100);
        let limit = 300;
        let batches = prepare(all.clone(), limit).unwrap();
        assert!(batches.len() > 1);
        let mut seen = Vec::new();
        for batch in &batches {
            assert!(batch.body.len() <= limit, "{}", batch.body.len());
            let parsed: Vec<Row> = serde_json::from_slice(&batch.body).unwrap();
            assert_eq!(parsed, batch.rows);
            seen.extend(parsed);
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn a_row_larger_than_the_limit_is_an_error_naming_its_size() {
        let error = prepare(rows(2), 20).err().unwrap();
        assert!(error.contains("bytes of JSON"), "{error}");
        assert!(error.contains("SLUICE_MAX_BATCH_BYTES"), "{error}");
    }

    #[test]
    fn no_rows_make_no_batch() {
        assert!(prepare(Vec::new(), 100).unwrap().is_empty());
    }
}
