# The release bucket: rendered, secret-free releases and the hosts' reports.
resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18:No server access logs: they need a second bucket per env, and the bucket holds only secret-free releases and reports that damso itself writes and reads; use CloudTrail data events if object-level audit is ever needed.
  # checkov:skip=CKV_AWS_144:No cross-region replication: every release can be re-rendered and re-uploaded by `damso deploy` from git and the image registry, so a second copy would only add cost.
  # checkov:skip=CKV_AWS_145:SSE-S3 (AES256) on purpose: the objects hold no secrets (those stay in SSM), and a KMS key would add a per-request cost and kms:Decrypt grants to every host role without keeping any reader out that the bucket policy and IAM do not.
  # checkov:skip=CKV2_AWS_62:No event notifications: nothing consumes bucket events; hosts poll their env's prefix.
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { Name = var.bucket_name })
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Only TLS: any request over plain HTTP is refused, whoever makes it. (Off only
# for the emulator, which evaluates no policy condition and would refuse everything.)
resource "aws_s3_bucket_policy" "this" {
  count  = var.deny_insecure_transport ? 1 : 0
  bucket = aws_s3_bucket.this.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # The public access block must exist first (the policy is not public, but S3 checks the block on put).
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# Releases are immutable keys (kept for rollback); what gets overwritten is the
# hosts' reports, whose old versions expire. Unfinished uploads are cleaned up.
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count  = var.lifecycle_rules ? 1 : 0
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "remove-expired-delete-markers"
    status = "Enabled"

    filter {}

    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
