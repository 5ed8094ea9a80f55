package newsearch.esimage;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

/**
 * The three analysis components that Elasticsearch's security index asks for (its
 * `email` analyzer: tokenizer `uax_url_email`, filters `pattern_capture`, `lowercase`
 * and `unique`) and that the integ-test-zip distribution lacks, because they live in
 * its missing analysis-common module. Without them the node cannot create the
 * security index, and so cannot store roles, users or API keys: the local image
 * (deploy/images/elasticsearch) could not run the least-privilege setup that the
 * official image runs. Built on Lucene's own classes, which the distribution ships;
 * `unique` keeps the first occurrence of each term, as Elasticsearch's does by
 * default. Nothing else: the search engine never uses these.
 */
public class SecurityIndexAnalysis extends Plugin implements AnalysisPlugin {

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of("uax_url_email", (indexSettings, env, name, settings) -> TokenizerFactory.newFactory(name, UAX29URLEmailTokenizer::new));
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        // pattern_capture exists only with settings (its patterns): Elasticsearch must
        // not make a settings-less instance of it when it builds its registry.
        AnalysisProvider<TokenFilterFactory> patternCapture = AnalysisPlugin.requiresAnalysisSettings(SecurityIndexAnalysis::patternCapture);
        AnalysisProvider<TokenFilterFactory> unique = (indexSettings, env, name, settings) -> new AbstractTokenFilterFactory(name) {
            @Override
            public TokenStream create(TokenStream input) {
                return new Unique(input);
            }
        };
        return Map.of("pattern_capture", patternCapture, "unique", unique);
    }

    private static TokenFilterFactory patternCapture(
        org.elasticsearch.index.IndexSettings indexSettings,
        org.elasticsearch.env.Environment env,
        String name,
        org.elasticsearch.common.settings.Settings settings
    ) {
        List<String> regexes = settings.getAsList("patterns");
        if (regexes.isEmpty()) {
            throw new IllegalArgumentException("pattern_capture filter [" + name + "] needs [patterns]");
        }
        Pattern[] patterns = regexes.stream().map(Pattern::compile).toArray(Pattern[]::new);
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", true);
        return new AbstractTokenFilterFactory(name) {
            @Override
            public TokenStream create(TokenStream input) {
                return new PatternCaptureGroupTokenFilter(input, preserveOriginal, patterns);
            }
        };
    }

    /** Drops a term already seen in this stream. */
    static final class Unique extends TokenFilter {
        private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
        private final CharArraySet seen = new CharArraySet(8, false);

        Unique(TokenStream input) {
            super(input);
        }

        @Override
        public boolean incrementToken() throws IOException {
            while (input.incrementToken()) {
                if (seen.contains(term.buffer(), 0, term.length()) == false) {
                    char[] copy = new char[term.length()];
                    System.arraycopy(term.buffer(), 0, copy, 0, term.length());
                    seen.add(copy);
                    return true;
                }
            }
            return false;
        }

        @Override
        public void reset() throws IOException {
            super.reset();
            seen.clear();
        }
    }
}
