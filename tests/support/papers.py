"""Seven small papers on unrelated topics, each with a paraphrase query that finds it: the
corpus of the small-index tests (conftest's small_corpus) and of bench/reliability.py."""

from __future__ import annotations

# Seven papers on clearly different topics; "query" is a paraphrase that should find each.
SMALL_PAPERS: list[dict] = [
    {
        "title": "ReefWatch: Detecting Coral Bleaching from Low-Altitude Drone Imagery",
        "abstract": (
            "Coral bleaching events are increasing in frequency, yet reef surveys still rely on "
            "divers counting colonies by hand. We present ReefWatch, a segmentation model that "
            "labels healthy, bleached and dead coral in orthomosaics stitched from consumer "
            "drone flights over shallow reefs. Trained on 41,000 annotated tiles from three "
            "Pacific atolls, it matches expert divers within 4% of bleached cover. Surveys "
            "that took a week of diving now take an afternoon of flying."
        ),
        "year": 2023,
        "venue": "Remote Sensing in Ecology",
        "query": "spotting whitened corals with aerial photos from small drones",
    },
    {
        "title": "HelixZip: Reference-Free Lossless Compression of DNA Sequencing Reads",
        "abstract": (
            "Sequencing machines produce reads faster than storage budgets grow. HelixZip "
            "compresses FASTQ files without a reference genome by combining a context-mixing "
            "model of nucleotides with a separate model for quality scores. On human and "
            "bacterial datasets it reaches 1.6 bits per base, 18% smaller than the best "
            "general-purpose compressor, while decompressing at 300 MB/s."
        ),
        "year": 2022,
        "venue": "Bioinformatics",
        "query": "shrinking genome read files without losing any information",
    },
    {
        "title": "Proving Absence of Reentrancy in Solidity Smart Contracts with Separation Logic",
        "abstract": (
            "Reentrancy bugs have drained hundreds of millions of dollars from Ethereum "
            "contracts. We give a separation-logic program logic for a core of Solidity in "
            "which a contract's storage invariant must hold at every external call. The logic "
            "is mechanised in Coq and proves the absence of reentrancy for 27 deployed token "
            "and auction contracts. Two previously unknown vulnerabilities were found when "
            "proofs failed."
        ),
        "year": 2024,
        "venue": "PLDI",
        "query": "formally verifying blockchain programs cannot be re-entered by attackers",
    },
    {
        "title": "Gaussian Process Estimation of Lithium-Ion Battery State of Health",
        "abstract": (
            "Knowing how much capacity an electric-vehicle battery has lost matters for "
            "warranties and second-life use. We model capacity fade with a Gaussian process "
            "over features of partial charging curves, so no full discharge test is needed. "
            "On 124 commercial cells cycled to end of life, the model predicts state of health "
            "within 1.1% and gives calibrated uncertainty that widens for unseen chemistries."
        ),
        "year": 2021,
        "venue": "Journal of Power Sources",
        "query": "how worn out is an electric car battery, predicted with probabilistic models",
    },
    {
        "title": "Self-Supervised Speech Pretraining for Languages with Ten Hours of Transcripts",
        "abstract": (
            "Most of the world's languages have almost no transcribed speech. We pretrain a "
            "speech encoder on untranscribed radio broadcasts in 40 African languages and "
            "fine-tune it with as little as ten hours of labelled audio per language. Word error "
            "rates drop by a third relative to multilingual baselines trained on high-resource "
            "languages. We release the encoder and the broadcast corpus."
        ),
        "year": 2023,
        "venue": "Interspeech",
        "query": "automatic transcription for under-resourced tongues using unlabelled audio",
    },
    {
        "title": "Cooperative Multi-Agent Reinforcement Learning for City-Scale Traffic Signals",
        "abstract": (
            "Fixed-time traffic lights waste fuel and time when demand shifts. We treat every "
            "intersection as an agent and train them jointly with a graph attention critic "
            "that shares information between neighbouring junctions. In a simulation of 2,500 "
            "intersections calibrated on taxi trajectories, average travel time falls by 17% "
            "compared to the actuated controllers in use today."
        ),
        "year": 2022,
        "venue": "KDD",
        "query": "learning to time stoplights across a whole city so commutes get shorter",
    },
    {
        "title": "Neural Decoders for the Surface Code under Circuit-Level Noise",
        "abstract": (
            "Quantum error correction needs decoders that are both accurate and fast enough to "
            "keep up with syndrome measurements. We train a convolutional decoder for the "
            "surface code on simulated circuit-level noise, including measurement errors. It "
            "exceeds minimum-weight perfect matching in logical error rate up to distance 11 "
            "and runs in under a microsecond per round on an FPGA."
        ),
        "year": 2024,
        "venue": "PRX Quantum",
        "query": "deep nets that fix qubit errors quickly from syndrome data",
    },
]
