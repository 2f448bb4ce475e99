"""Reading results: job directories, sweeps and other harnesses' files gathered by configuration
(`collect`), the statistics over tasks (`inference`), a job's metrics.json (`metrics`), paired
comparisons (`compare`), the report's tables and plots (`report`) and the sweep browser
(`browser/`)."""
